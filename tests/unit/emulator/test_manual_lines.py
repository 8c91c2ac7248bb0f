"""Lines of the OneMO LwM2M AT manual V4.4.0 that a replay of chapters 2-5 checks one by one, on
every model the manual says they apply to. Each test quotes the manual's line (section, line
number of the manual's text as shipped with the project's reference copy)."""

from __future__ import annotations

import inspect
import ipaddress
import re
from importlib import resources

import pytest

from emulator.module import device as device_module
from emulator.module.device import CTWING, HUAWEI, UNDECLARED_OPAQUE_TYPE, YANFEI
from emulator.module.models import MODELS
from emulator.module.network import CARRIER_HOSTS, HostMap
from emulator.module.values import AtType
from lwm2m.node import SingleResource
from lwm2m.numbers import CoapCode, ResourceType
from lwm2m.path import Path
from tests.unit.emulator.harness import Harness, normalise

ALL_MODELS = sorted(MODELS)

# --- §5.2 / §4.7: AT+MIPLDEVINFO? after a bootstrap -------------------------------------------------

# §5.2, line 1552: the LwM2M server the bootstrap issued, by the carrier's address; no authcode.
MANUAL_5_2_DEVINFO = '+MIPLDEVINFO:"183.230.40.40:5684",0,, "cPYxj0cTs9qMVL72"'
# §4.7, line 1277: host, flag and authcode.
MANUAL_4_7_DEVINFO = '+MIPLDEVINFO: "183.230.40.149:5684", 1, "abcd1234"'


def squeezed(line: str) -> str:
    return re.sub(r"\s+", "", line)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_devinfo_after_a_bootstrap_prints_the_manual_5_2_line(model: str) -> None:
    h = Harness(model)
    h.send('AT+MIPLCREATEEX="nbiotbt.heclouds.com:5684",1,, "1234abcd"')  # §5.2 line 1539
    assert h.send("AT+MIPLOPEN=0,3000,60")[-2:] == ["+MIPLEVENT: 0,2", "+MIPLEVENT: 0,6"]
    (line, ok) = h.send("AT+MIPLDEVINFO?")
    assert ok == "OK"
    # The manual's separators, with §2.2's space after the colon ("冒号“:”后均存在空格").
    assert line == '+MIPLDEVINFO: "183.230.40.40:5684", 0,, "cPYxj0cTs9qMVL72"'
    assert squeezed(line) == squeezed(MANUAL_5_2_DEVINFO)


@pytest.mark.parametrize("model", ALL_MODELS)
def test_devinfo_prints_the_manual_4_7_line(model: str) -> None:
    h = Harness(model)
    h.send('AT+MIPLCREATEEX="183.230.40.149:5684",1,"abcd1234"')
    assert h.send("AT+MIPLDEVINFO?") == [MANUAL_4_7_DEVINFO, "OK"]


def test_devinfo_quotes_an_authcode_given_with_a_psk() -> None:
    h = Harness()
    h.send('AT+MIPLCREATEEX="183.230.40.40:5684",0,"cmiot","abcdefge"')
    assert h.send("AT+MIPLDEVINFO?") == ['+MIPLDEVINFO: "183.230.40.40:5684", 0, "cmiot", "abcdefge"', "OK"]


def test_the_host_map_read_backwards_names_the_carrier_address_of_each_testbed_listener() -> None:
    hosts = HostMap()
    # What the testbed's bootstrap server writes (its access listener) -> the manual's address.
    assert hosts.carrier_host("127.0.1.2", 5684) == "183.230.40.40"
    assert hosts.carrier_host("127.0.1.2", 5683) == "183.230.40.40"
    assert hosts.carrier_host("127.0.1.1", 5684) == "183.230.40.39"
    assert hosts.carrier_host("127.0.1.3", 5683) == "221.229.214.202"
    # No address of Huawei's or Yanfei's is known: their names.
    assert hosts.carrier_host("127.0.1.5", 5684) == "iot-coaps.cn-north-4.myhuaweicloud.com"
    assert hosts.carrier_host("127.0.1.4", 5683) == "dmp-coap.cuiot.cn"


def test_a_carrier_address_shown_routes_back_to_the_local_listener_never_to_the_carrier() -> None:
    """Nothing may ever send to the real carrier addresses: whatever the module shows (and may be
    given back verbatim, §5.2 line 1561) routes to the loopback listener it came from."""
    overrides = {"127.0.1.2:5684": ("127.0.1.2", 40123), "127.0.1.2:5683": ("127.0.1.2", 40124)}
    for hosts in (HostMap(), HostMap(overrides)):
        for local in sorted(set(CARRIER_HOSTS.values())):
            for port in (5683, 5684):
                shown = hosts.carrier_host(local, port)
                assert shown != local
                routed = hosts.route(shown, port)
                assert routed == hosts.route(local, port)
                assert ipaddress.ip_address(routed[0]).is_loopback
    assert HostMap(overrides).route("183.230.40.40", 5684) == ("127.0.1.2", 40123)


def test_addresses_no_carrier_host_routes_to_are_kept() -> None:
    assert HostMap().carrier_host("10.1.2.3", 5684) == "10.1.2.3"
    assert HostMap().carrier_host("127.0.0.1", 5683) == "127.0.0.1"
    assert HostMap(carrier_defaults=False).carrier_host("127.0.1.2", 5684) == "127.0.1.2"
    # A carrier host already, or a name: kept as given.
    assert HostMap().carrier_host("183.230.40.149", 5684) == "183.230.40.149"
    assert HostMap().carrier_host("nbiotacc.heclouds.com", 5684) == "nbiotacc.heclouds.com"


# --- Chapter 2, Table 2: AT+<CMD>=? ------------------------------------------------------------------

# §2.1 Table 2, line 205: "测试命令	AT+<CMD>=?	返回参数列表及参数值范围"


def mipl_commands(h: Harness) -> list[str]:
    return [name for name in h.module.engine.table.names() if name.startswith("+MIPL")]


@pytest.mark.parametrize("model", ALL_MODELS)
def test_every_mipl_test_form_answers_the_parameters_its_set_form_validates(model: str) -> None:
    h = Harness(model)
    for name in mipl_commands(h):
        spec = h.module.engine.table.get(name)
        assert spec is not None
        answer = h.send(f"AT{name}=?")
        assert answer[-1] == "OK", name
        assert answer[:-1] == [f"{name}: {signature.describe()}" for signature in spec.signatures()], name
        if spec.set is not None:
            assert answer[:-1], f"{name} has a set form: its test form lists its parameters"
            assert all(re.fullmatch(rf"\{name}: [^ ]+", line) for line in answer[:-1]), answer


def test_test_forms_print_the_ranges_of_the_manual() -> None:
    h = Harness("MN316")
    # §3.5 line 350: <result> "保留，应设置为1".
    assert h.send("AT+MIPLDISCOVERRSP=?") == [
        "+MIPLDISCOVERRSP: (0-65535),(0-65535),(1),(0-4096),<data>",
        "OK",
    ]
    # §3.6: <lifetime> in seconds (15 s ... 0x0FFFFFFF, platforms.md), <timeout> optional.
    assert h.send("AT+MIPLOPEN=?") == ["+MIPLOPEN: (0-65535),(15-268435455),(1-65535)", "OK"]
    # §4.1: the three set forms of the syntax table; <platform> 0-3, 10; <pattern> 0-4.
    assert h.send("AT+MIPLCFG=?") == [
        '+MIPLCFG: ("platform"),(0-65535),(0-3),(0-4)',
        '+MIPLCFG: ("platform"),(0-65535),(10),<epname>',
        '+MIPLCFG: ("binding"),(0-65535),(0-2)',
        "OK",
    ]
    # §4.2: <nnmi> 0-2, <nsmi> 0/1.
    assert h.send("AT+MIPLNMI=?") == ["+MIPLNMI: (0-65535),(0-2),(0,1)", "OK"]
    # §4.8 line 1295: "设置间隔时间不能低于60s" (0 turns it off).
    assert h.send("AT+MIPLDTLSNAT=?") == ["+MIPLDTLSNAT: (0-65535),(0,60-2147483647)", "OK"]
    # §3.9 footnote 3: <flag> 0x200 / 0x400 beside 0, 1, 2.
    (notify, _ok) = h.send("AT+MIPLNOTIFY=?")
    assert ",<value>,(0-255),(0-2,0x200,0x400),(0-65535),(0-4)" in notify
    # §4.7: a read command only; §4.6: <flag> bits 0 and 1, <psk_encode> 0/1.
    assert h.send("AT+MIPLDEVINFO=?") == ["OK"]
    assert h.send("AT+MIPLCREATEEX=?") == ["+MIPLCREATEEX: <host>,(0-3),<authcode>,<PSK>,<PSKID>,(0,1)", "OK"]


@pytest.mark.parametrize("model", ["ML305A", "ML307A", "ML307R"])
def test_test_forms_follow_the_model_row_where_the_manual_narrows_a_range(model: str) -> None:
    h = Harness(model)
    # §4.2 line 1103: "ML305A/ML307A/ML307R不支持发送消息上报功能" -> <nsmi> 0 only.
    assert h.send("AT+MIPLNMI=?") == ["+MIPLNMI: (0-65535),(0-2),(0)", "OK"]
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLNMI=0,0,1") == ["+CIS ERROR: 601"]
    # §4.1 footnote 7: no Yanfei (2) on ML305A/ML307A/ML307R.
    assert h.send("AT+MIPLCFG=?")[0] == '+MIPLCFG: ("platform"),(0-65535),(0,1),(0-4)'
    # §3.9 footnote 3: no release flags.
    (notify, _ok) = h.send("AT+MIPLNOTIFY=?")
    assert ",<value>,(0-255),(0-2),(0-65535),(0-4)" in notify


@pytest.mark.parametrize("model", ALL_MODELS)
def test_test_forms_of_optional_commands_answer_error_on_models_without_them(model: str) -> None:
    h = Harness(model)
    # §4.5 line 1227: "仅MN318/ML305A/ML307A/ML307R支持该命令".
    expected = (
        ["+MIPLUPDATESET: (0-65535),(0,1)", "OK"]
        if model in ("MN318", "ML305A", "ML307A", "ML307R")
        else ["ERROR"]
    )
    assert h.send("AT+MIPLUPDATESET=?") == expected
    # §4.9 line 1370: "该命令仅适用于M5310-A模组" (an execute command: no parameters to list).
    assert h.send("AT+MIPLLTRDP=?") == (["OK"] if model == "M5310-A" else ["ERROR"])


# --- §5.3 / §5.6: the object 19 downlink of a value the MCU never declared -----------------------------

# §5.3, line 1635 (CTWing) and §5.6, line 1812 (Huawei Cloud IoTDA).
MANUAL_5_3_DOWNLINK = "+MIPLWRITE: 0,24265,19,1,0,2,8,34353637,0"
MANUAL_5_6_DOWNLINK = "+MIPLWRITE: 0,23550,19,1,0,6,8,05010203,0"


def appdata_registered(model: str, host: str, platform: int) -> Harness:
    """§5.3 / §5.6 lines 1604-1611 / 1783-1790: create, platform, object 19, open."""
    h = Harness(model)
    assert h.send(f'AT+MIPLCREATEEX="{host}",0') == ["+MIPLCREATEEX: 0", "OK"]
    assert h.send(f'AT+MIPLCFG="platform",0,{platform}') == ["OK"]
    assert h.send('AT+MIPLADDOBJ=0,19,2,"11",0,0') == ["OK"]
    assert h.send('AT+MIPLDISCOVERRSP=0,19,1,3,"1;0"') == ["OK"]
    assert h.send("AT+MIPLOPEN=0,3000,30")[-1] == "+MIPLEVENT: 0,6"
    return h


async def downlink(h: Harness, data: bytes) -> list[str]:
    """The platform's PUT /19/1/0 (octet-stream); the module acknowledges it itself."""
    code = await h.module.write(Path(19, 1, 0), SingleResource(0, data, ResourceType.OPAQUE), True)
    assert code is CoapCode.CHANGED
    return h.new()


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if CTWING in MODELS[m].platforms])
async def test_ctwing_downlink_of_undeclared_data_prints_type_2_as_manual_5_3(model: str) -> None:
    h = appdata_registered(model, "221.229.214.202:5683", CTWING)
    (line,) = await downlink(h, bytes.fromhex("34353637"))
    assert normalise(line) == normalise(MANUAL_5_3_DOWNLINK)


@pytest.mark.parametrize("model", [m for m in ALL_MODELS if HUAWEI in MODELS[m].platforms])
async def test_huawei_downlink_of_undeclared_data_prints_type_6_as_manual_5_6(model: str) -> None:
    h = appdata_registered(model, "iot-coaps.cn-north-4.myhuaweicloud.com", HUAWEI)
    (line,) = await downlink(h, bytes.fromhex("05010203"))
    assert normalise(line) == normalise(MANUAL_5_6_DOWNLINK)


def test_the_decision_and_its_source_are_in_the_platform_table() -> None:
    source = inspect.getsource(device_module)
    assert UNDECLARED_OPAQUE_TYPE == {CTWING: AtType.OPAQUE}
    for quoted in (MANUAL_5_3_DOWNLINK, MANUAL_5_6_DOWNLINK, "未申明过类型的值将默认以16进制字符串类型打印"):
        assert quoted.split(",", 1)[-1] in source


# --- §5.5 / §5.6: the manual's typo AT+MIPDELETE=0 ------------------------------------------------------

# §5.5, line 1770 and §5.6, line 1835: "AT+MIPDELETE=0 //删除本地通信实例" (for AT+MIPLDELETE=0).
TYPO = "AT+MIPDELETE=0"


# The flows and the models they apply to (§4.1 footnote 7: no Yanfei on ML305A/ML307A/ML307R;
# §5.6 note: not for ML305A/ML307A/ML307R).
TYPO_FLOWS = [
    ("5.5-yanfei", "dmp-coap.cuiot.cn:5683", YANFEI),
    ("5.6-huawei", "iot-coaps.cn-north-4.myhuaweicloud.com", HUAWEI),
]


@pytest.mark.parametrize(
    ("model", "flow", "host", "platform"),
    [(m, *flow) for flow in TYPO_FLOWS for m in ALL_MODELS if flow[2] in MODELS[m].platforms],
)
def test_the_manual_typo_mipdelete_answers_error_and_deletes_nothing(
    model: str, flow: str, host: str, platform: int
) -> None:
    h = Harness(model)
    h.send(f'AT+MIPLCREATEEX="{host}",0')
    assert h.send(f'AT+MIPLCFG="platform",0,{platform}') == ["OK"]
    assert h.send("AT+MIPLOPEN=0,3000,30")[-1] == "+MIPLEVENT: 0,6"
    assert h.send("AT+MIPLCLOSE=0") == ["OK", "+MIPLEVENT: 0,15"]
    assert h.send(TYPO) == ["ERROR"]
    assert h.send("AT+MIPDELETE=?") == ["ERROR"]
    assert h.send("AT+MIPLDEVINFO?")[-1] == "OK", "the device instance is still there"
    assert h.send("AT+MIPLDELETE=0") == ["OK"]


@pytest.mark.parametrize("flow", ["5.5-yanfei", "5.6-huawei"])
def test_the_flows_send_the_corrected_command_with_a_comment_naming_the_typo(flow: str) -> None:
    text = (resources.files("emulator.scenarios") / "flows" / f"{flow}.txt").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert TYPO not in [line.removeprefix("send ").strip() for line in lines if line.startswith("send")]
    (index,) = [i for i, line in enumerate(lines) if line == "send AT+MIPLDELETE=0"]
    comment = " ".join(line for line in lines[index - 2 : index] if line.startswith("#"))
    assert f'"{TYPO}"' in comment and f"§{flow[:3]}" in comment


def test_3gpp_test_forms_come_from_the_same_signatures() -> None:
    """3GPP TS 27.007: AT+CFUN=? lists <fun> 0, 1, 4 and <rst> 0/1, and the set form takes
    exactly those."""
    h = Harness("MN316")
    assert h.send("AT+CFUN=?") == ["+CFUN: (0,1,4),(0,1)", "OK"]
    assert h.send("AT+CFUN=2") == ["+CME ERROR: 50"]
    assert h.send("AT+CGATT=?") == ["+CGATT: (0,1)", "OK"]
    assert h.send("AT+CEREG=?") == ["+CEREG: (0-5)", "OK"]
    assert h.send("AT+CGSN=?") == ["+CGSN: (0,1)", "OK"]
    assert h.send("AT+CSQ=?") == ["+CSQ: (0-31,99),(0-7,99)", "OK"]
