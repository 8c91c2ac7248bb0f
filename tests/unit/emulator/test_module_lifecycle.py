"""Device instance life cycle: create, objects, open, update, close, delete, configuration
(manual §3.1-§3.8, §4.1, §4.5-§4.9), one test per success form, error form and model difference."""

from __future__ import annotations

import pytest

from emulator.module.models import CBC_SHA256, CCM_8, MODELS
from lwm2m.path import Path
from tests.unit.emulator.harness import Harness

ONENET_BLOB_V1 = (
    "130031F10003F2002304001100000000000000123138332E3233302E34302E34303A35363833000131F30008C000000000"
)


def blob_v2(host: str, flags: int, user_data: str = "") -> str:
    """A config blob with the SDK 2.x net flags byte."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return len(raw).to_bytes(2, "big") + raw

    net_body = (1024).to_bytes(2, "big") + b"\x11" + bytes([flags])
    net_body += string("") + string("") + string("") + string(host) + string(user_data)
    net = b"\xf2" + (len(net_body) + 3).to_bytes(2, "big") + net_body
    sys_item = bytes.fromhex("F30008C000000000")
    items = bytes.fromhex("F10003") + net + sys_item
    blob = b"\x13" + (len(items) + 3).to_bytes(2, "big") + items
    return blob.hex().upper()


# ---------------------------------------------------------------- AT+MIPLCREATE / CREATEEX / DELETE


def test_create_set_form_parses_the_common_49_byte_config_without_net_flags() -> None:
    h = Harness()
    assert h.send(f"AT+MIPLCREATE=49,{ONENET_BLOB_V1},0,49,0") == ["+MIPLCREATE: 0", "OK"]
    assert h.send("AT+MIPLDEVINFO?") == ['+MIPLDEVINFO: "183.230.40.40:5683", 2', "OK"]


def test_create_set_form_assembles_segments_until_flag_0() -> None:
    h = Harness()
    first, second = ONENET_BLOB_V1[:40], ONENET_BLOB_V1[40:]
    assert h.send(f"AT+MIPLCREATE=49,{first},1,20,1") == ["OK"]
    assert h.send(f"AT+MIPLCREATE=49,{second},0,29,0") == ["+MIPLCREATE: 0", "OK"]


def test_create_set_form_reads_bootstrap_and_dtls_from_the_sdk2_net_flags() -> None:
    h = Harness()
    blob = blob_v2("183.230.40.39:5684", 0xC0, "AuthCode:cmiot;PSK:1234abcd;")
    assert h.send(f"AT+MIPLCREATE={len(blob) // 2},{blob},0,{len(blob) // 2},0") == ["+MIPLCREATE: 0", "OK"]
    h.send("AT+MIPLOPEN=0,300")
    config = h.client.configs[0]
    assert (config.bootstrap, config.dtls, config.auth_code, config.psk) == (True, True, "cmiot", b"1234abcd")


@pytest.mark.parametrize(
    "line",
    [
        f"AT+MIPLCREATE=49,{ONENET_BLOB_V1},0,48,0",  # currentsize does not match
        f"AT+MIPLCREATE=50,{ONENET_BLOB_V1},0,49,0",  # totalsize does not match
        f"AT+MIPLCREATE=49,{ONENET_BLOB_V1[:-2]}01,0,49,0",  # sys item length broken
        "AT+MIPLCREATE=2,ZZ,0,1,0",  # not hex
        "AT+MIPLCREATE=49,1300",  # missing parameters
    ],
)
def test_create_set_form_rejects_malformed_config_with_601(line: str) -> None:
    assert Harness().send(line) == ["+CIS ERROR: 601"]


def test_create_when_the_instance_exists_is_653() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLCREATE") == ["+CIS ERROR: 653"]
    assert h.send('AT+MIPLCREATEEX="1.2.3.4",0') == ["+CIS ERROR: 653"]


def test_create_execute_form_bootstraps_to_onenet() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLOPEN=0,300") == ["OK", "+MIPLEVENT: 0,2", "+MIPLEVENT: 0,6"]
    config = h.client.configs[0]
    assert (config.server_host, config.server_port, config.bootstrap) == ("nbiotbt.heclouds.com", 5683, True)
    assert config.endpoint == "869975030000461;460041064826326"


def test_create_ex_port_5684_means_dtls_with_the_imei_as_default_identity() -> None:
    h = Harness()
    h.send('AT+MIPLCREATEEX="nbiotacc.heclouds.com:5684",0,,"abcdefge"')
    h.send("AT+MIPLOPEN=0,3000,60")
    config = h.client.configs[0]
    assert (config.dtls, config.psk, config.psk_identity) == (True, b"abcdefge", b"869975030000461")


def test_create_ex_hex_psk_and_pskid() -> None:
    h = Harness("MN316")
    assert h.send('AT+MIPLCREATEEX="221.229.214.202:5684",0,,abcd1234,myid,1') == ["+MIPLCREATEEX: 0", "OK"]
    h.send('AT+MIPLCFG="platform",0,1')
    h.send("AT+MIPLOPEN=0,3000,30")
    assert (h.client.configs[0].psk, h.client.configs[0].psk_identity) == (bytes.fromhex("abcd1234"), b"myid")


@pytest.mark.parametrize(
    "line",
    [
        'AT+MIPLCREATEEX="h:5684",0,,"0123456789abcdefX"',  # PSK longer than 16 bytes
        'AT+MIPLCREATEEX="h:5684",0,,"xyz",,1',  # psk_encode 1 but not hex
        'AT+MIPLCREATEEX="h:notaport",0',
        'AT+MIPLCREATEEX="h",4',
        "AT+MIPLCREATEEX",
    ],
)
def test_create_ex_rejects_bad_parameters_with_601(line: str) -> None:
    assert Harness().send(line) == ["+CIS ERROR: 601"]


def test_delete_without_an_instance_is_653_and_while_registered_drops_the_socket() -> None:
    h = Harness()
    assert h.send("AT+MIPLDELETE=0") == ["+CIS ERROR: 653"]
    h.setup_registered()
    assert h.send("AT+MIPLDELETE=0") == ["OK"]
    assert h.client.aborted and not h.client.closed
    assert h.send("AT+MIPLOPEN?") == ["+CIS ERROR: 602"]


def test_a_dropped_client_cannot_report_into_the_module() -> None:
    h = Harness(register="silent")
    h.send("AT+MIPLCREATE")
    h.send("AT+MIPLOPEN=0,300")
    old = h.client
    h.send("AT+MIPLDELETE=0")
    old.owner.register_succeeded()
    assert h.new() == []
    assert h.module.device is None


# ---------------------------------------------------------------- objects


def test_add_object_validates_bitmap_duplicates_and_ref() -> None:
    h = Harness()
    assert h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0') == ["+CIS ERROR: 653"]
    h.send("AT+MIPLCREATE")
    assert h.send('AT+MIPLADDOBJ=0,3200,2,"1",0,0') == ["+CIS ERROR: 601"]
    assert h.send('AT+MIPLADDOBJ=0,3200,2,"12",0,0') == ["+CIS ERROR: 601"]
    assert h.send('AT+MIPLADDOBJ=1,3200,1,"1",0,0') == ["+CIS ERROR: 653"]
    assert h.send('AT+MIPLADDOBJ=0,3200,5,"10010",0,0') == ["OK"]
    assert h.send('AT+MIPLADDOBJ=0,3200,1,"1"') == ["+CIS ERROR: 651"]
    assert h.module.device is not None and h.module.device.objects[3200].instances == (0, 3)


def test_objects_become_register_links_next_to_the_module_device_and_firmware_objects() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    h.send('AT+MIPLADDOBJ=0,3200,5,"10010",0,0')
    h.send('AT+MIPLADDOBJ=0,3303,1,"0",0,0')
    h.send("AT+MIPLOPEN=0,300")
    assert h.client.configs[0].object_links == (
        Path(3, 0),
        Path(5, 0),
        Path(3200, 0),
        Path(3200, 3),
        Path(3303),
    )


def test_delete_unknown_object_is_653() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLDELOBJ=0,3200") == ["+CIS ERROR: 653"]


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ('AT+MIPLDISCOVERRSP=0,3200,1,13,"5500;5501;5750"', "+CIS ERROR: 601"),
        ('AT+MIPLDISCOVERRSP=0,3200,0,14,"5500;5501;5750"', "+CIS ERROR: 601"),
        ('AT+MIPLDISCOVERRSP=0,3200,1,5,"55;xx"', "+CIS ERROR: 601"),
        ('AT+MIPLDISCOVERRSP=0,3300,1,4,"5700"', "+CIS ERROR: 653"),
    ],
)
def test_discover_rsp_errors(line: str, answer: str) -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0')
    assert h.send(line) == [answer]


# ---------------------------------------------------------------- open / update / close


def test_open_errors() -> None:
    h = Harness()
    assert h.send("AT+MIPLOPEN=0,300") == ["+CIS ERROR: 653"]
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLOPEN=0,5") == ["+CIS ERROR: 601"]
    assert h.send("AT+MIPLOPEN=0") == ["+CIS ERROR: 601"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.send("AT+MIPLOPEN=0,300") == ["+CIS ERROR: 651"]


def test_open_times_out_after_timeout_with_event_7() -> None:
    h = Harness(register="silent")
    h.send('AT+MIPLCREATEEX="1.2.3.4",0')
    assert h.send("AT+MIPLOPEN=0,300,10") == ["OK"]
    h.clock.advance(9.9)
    assert h.new() == []
    h.clock.advance(0.1)
    assert h.new() == ["+MIPLEVENT: 0,7"]
    assert h.client.aborted
    assert h.send("AT+MIPLOPEN=0,300") == ["OK"]  # back to created: may log in again


def test_open_timeout_during_bootstrap_is_event_3_after_the_default_30_s() -> None:
    h = Harness(register="bootstrap")
    h.send("AT+MIPLCREATE")
    h.send("AT+MIPLOPEN=0,300")
    h.clock.advance(30)
    assert h.new() == ["+MIPLEVENT: 0,3"]


def test_open_without_network_attach_times_out() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+CGATT=0") == ["OK"]
    h.send("AT+MIPLOPEN=0,300")
    h.clock.advance(30)
    assert h.new() == ["+MIPLEVENT: 0,7"]
    assert h.clients == []


def test_open_query_is_602_when_not_registered_and_651_off_onenet() -> None:
    h = Harness("MN316")
    h.send('AT+MIPLCREATEEX="221.229.214.202:5683",0')
    assert h.send("AT+MIPLOPEN?") == ["+CIS ERROR: 602"]
    h.send('AT+MIPLCFG="platform",0,1')
    h.send("AT+MIPLOPEN=0,300")
    assert h.send("AT+MIPLOPEN?") == ["+CIS ERROR: 651"]


def test_update_errors_and_lifetime() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLUPDATE=0,300,0") == ["+CIS ERROR: 602"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.send("AT+MIPLUPDATE=0,300,2") == ["+CIS ERROR: 601"]
    assert h.send("AT+MIPLUPDATE=0,600,1") == ["OK", "+MIPLEVENT: 0,11"]
    assert h.client.updates == [(600, True)]
    h.clock.advance(599)
    assert h.send("AT+MIPLOPEN?") == ["OK", "+MIPLEVENT: 0,6"]


def test_update_failure_is_silent_on_onemo_models_and_event_12_on_m5310a() -> None:
    quiet = Harness("MN316", update_ok=False)
    quiet.setup_registered()
    assert quiet.send("AT+MIPLUPDATE=0,300,0") == ["OK"]
    loud = Harness("M5310-A", update_ok=False)
    loud.send('AT+MIPLCREATEEX="1.2.3.4",0')
    loud.send("AT+MIPLOPEN=0,300")
    assert loud.send("AT+MIPLUPDATE=0,300,0") == ["OK", "+MIPLEVENT: 0,12"]


def test_auto_update_fires_30_s_before_the_lifetime_ends() -> None:
    h = Harness("ML307R")
    h.send('AT+MIPLCREATEEX="1.2.3.4",0')
    assert h.send("AT+MIPLUPDATESET=0,1") == ["OK"]
    h.send("AT+MIPLOPEN=0,300")
    h.clock.advance(269)
    assert h.client.updates == []
    h.clock.advance(1)
    assert h.client.updates == [(None, False)]
    assert h.new() == ["+MIPLEVENT: 0,11"]
    h.clock.advance(270)
    assert len(h.client.updates) == 2


def test_auto_update_needs_a_lifetime_of_60_s() -> None:
    h = Harness("ML307R")
    h.send('AT+MIPLCREATEEX="1.2.3.4",0')
    h.send("AT+MIPLUPDATESET=0,1")
    h.send("AT+MIPLOPEN=0,59")
    h.clock.advance(58)
    assert h.client.updates == []


def test_lifetime_expiry_logs_out_and_m5310a_reports_event_9() -> None:
    h = Harness("M5310-A")
    h.send('AT+MIPLCREATEEX="1.2.3.4",0')
    h.send("AT+MIPLOPEN=0,100")
    h.new()
    h.clock.advance(100)
    assert h.new() == ["+MIPLEVENT: 0,9"]
    assert h.send("AT+MIPLLTRDP") == ["+MIPLLTRDP: 0", "OK"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_updateset_exists_only_on_mn318_ml305a_ml307a_ml307r(model: str) -> None:
    h = Harness(model)
    h.send("AT+MIPLCREATE")
    expected = ["OK"] if model in ("MN318", "ML305A", "ML307A", "ML307R") else ["ERROR"]
    assert h.send("AT+MIPLUPDATESET=0,1") == expected


@pytest.mark.parametrize("model", sorted(MODELS))
def test_ltrdp_exists_only_on_m5310a(model: str) -> None:
    assert Harness(model).send("AT+MIPLLTRDP") == (
        ["+MIPLLTRDP: 0", "OK"] if model == "M5310-A" else ["ERROR"]
    )


def test_updateset_after_open_is_651() -> None:
    h = Harness("MN318")
    h.setup_registered()
    assert h.send("AT+MIPLUPDATESET=0,1") == ["+CIS ERROR: 651"]


def test_close_errors_and_the_ml307_unregister_failed_event() -> None:
    h = Harness("ML307R", close_ok=False)
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLCLOSE=0") == ["+CIS ERROR: 602"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.send("AT+MIPLCLOSE=0") == ["OK", "+MIPLEVENT: 0,16"]
    assert h.send("AT+MIPLOPEN?") == ["OK", "+MIPLEVENT: 0,6"]  # still logged in
    quiet = Harness("MN316", close_ok=False)
    quiet.setup_registered()
    assert quiet.send("AT+MIPLCLOSE=0") == ["OK"]


def test_close_clears_the_resource_lists() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0')
    h.send('AT+MIPLDISCOVERRSP=0,3200,1,4,"5750"')
    h.send("AT+MIPLOPEN=0,300")
    h.send("AT+MIPLCLOSE=0")
    assert h.module.device is not None and h.module.device.resource_lists == {}


# ---------------------------------------------------------------- configuration


def test_cfg_platform_patterns_and_binding_shape_the_client_config() -> None:
    h = Harness("MN316")
    h.send('AT+MIPLCREATEEX="221.229.214.202:5683",0')
    assert h.send('AT+MIPLCFG="platform",0,1,4') == ["OK"]
    assert h.send('AT+MIPLCFG="binding",0,2') == ["OK"]
    h.send("AT+MIPLOPEN=0,300")
    config = h.client.configs[0]
    assert (config.endpoint, config.binding, config.platform) == (
        "urn:imei-imsi:869975030000461-460041064826326",
        "UQ",
        1,
    )


@pytest.mark.parametrize(
    ("cfg", "endpoint"),
    [
        ('AT+MIPLCFG="platform",0,1', "869975030000461"),
        ('AT+MIPLCFG="platform",0,0', "869975030000461;460041064826326"),
        ('AT+MIPLCFG="platform",0,1,3', "urn:imei:869975030000461"),
        ('AT+MIPLCFG="platform",0,10,"my-device"', "my-device"),
    ],
)
def test_cfg_endpoint_names(cfg: str, endpoint: str) -> None:
    h = Harness("MN316")
    h.send('AT+MIPLCREATEEX="1.2.3.4",0')
    assert h.send(cfg) == ["OK"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.client.configs[0].endpoint == endpoint


def test_cfg_errors() -> None:
    h = Harness("ML307R")
    assert h.send('AT+MIPLCFG="platform",0,1') == ["+CIS ERROR: 653"]
    h.send("AT+MIPLCREATE")
    assert h.send('AT+MIPLCFG="platform",0,2') == ["+CIS ERROR: 601"]  # no Yanfei (§4.1 footnote 7)
    assert h.send('AT+MIPLCFG="platform",0,4') == ["+CIS ERROR: 601"]
    assert h.send('AT+MIPLCFG="platform",0,1,5') == ["+CIS ERROR: 601"]
    assert h.send('AT+MIPLCFG="binding",0,3') == ["+CIS ERROR: 601"]
    assert h.send('AT+MIPLCFG="colour",0,1') == ["+CIS ERROR: 601"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.send('AT+MIPLCFG="binding",0,1') == ["+CIS ERROR: 651"]


def test_yanfei_platform_exists_on_mn316() -> None:
    h = Harness("MN316")
    h.send("AT+MIPLCREATE")
    assert h.send('AT+MIPLCFG="platform",0,2') == ["OK"]


def test_dtls_to_huawei_is_not_allowed_on_ml307r_but_is_on_mn316() -> None:
    for model, answer in (("ML307R", "+CIS ERROR: 601"), ("MN316", "OK")):
        h = Harness(model)
        h.send('AT+MIPLCREATEEX="iot-coaps.cn-north-4.myhuaweicloud.com:5684",0,,abcd1234,,1')
        assert h.send('AT+MIPLCFG="platform",0,3') == [answer]


def test_ctwing_dtls_login_is_refused_on_ml307r() -> None:
    h = Harness("ML307R")
    h.send('AT+MIPLCREATEEX="221.229.214.202:5684",0,,abcdefgh,,0')
    h.send('AT+MIPLCFG="platform",0,1')
    assert h.send("AT+MIPLOPEN=0,3000,30") == ["+CIS ERROR: 651"]


@pytest.mark.parametrize(("model", "suites"), [("MN316", (CBC_SHA256,)), ("MN319", (CBC_SHA256, CCM_8))])
def test_cipher_suites_per_model(model: str, suites: tuple[str, ...]) -> None:
    h = Harness(model)
    h.send('AT+MIPLCREATEEX="1.2.3.4:5684",0,,"abc"')
    h.send("AT+MIPLOPEN=0,300")
    assert h.client.configs[0].cipher_suites == suites


def test_dtls_nat_values() -> None:
    h = Harness()
    assert h.send("AT+MIPLDTLSNAT=0,120") == ["+CIS ERROR: 653"]
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLDTLSNAT=0,59") == ["+CIS ERROR: 601"]
    assert h.send("AT+MIPLDTLSNAT=0,0") == ["OK"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.client.configs[0].dtls_nat_interval == 0


def test_devinfo_shows_the_lwm2m_server_and_psk_after_bootstrap() -> None:
    h = Harness()
    assert h.send("AT+MIPLDEVINFO?") == ["+CIS ERROR: 653"]
    h.send('AT+MIPLCREATEEX="nbiotbt.heclouds.com:5684",1,, "1234abcd"')
    assert h.send("AT+MIPLDEVINFO?") == ['+MIPLDEVINFO: "nbiotbt.heclouds.com:5684", 1,, "1234abcd"', "OK"]
    h.send("AT+MIPLOPEN=0,3000,60")
    assert h.send("AT+MIPLDEVINFO?") == [
        '+MIPLDEVINFO: "183.230.40.40:5684", 0,, "cPYxj0cTs9qMVL72"',
        "OK",
    ]


def test_event_numbers_depend_on_the_model() -> None:
    sdk = Harness("M5310-A")
    sdk.send("AT+MIPLCREATE")
    assert sdk.send("AT+MIPLOPEN=0,300") == ["OK", "+MIPLEVENT: 0,1", "+MIPLEVENT: 0,2", "+MIPLEVENT: 0,6"]
    onemo = Harness("MN316", register="silent")
    onemo.send("AT+MIPLCREATE")
    onemo.send("AT+MIPLOPEN=0,300")
    onemo.client.owner.register_timeout()
    assert onemo.new() == ["+MIPLEVENT: 0,7"]  # 8 is not a OneMO event: shown as 7


def test_platform_events_31_32_33() -> None:
    h = Harness()
    h.setup_registered()
    owner = h.client.owner
    owner.dtls_ip_aged()
    owner.oversized_packet_dropped()
    owner.device_deleted()
    assert h.new() == ["+MIPLEVENT: 0,32", "+MIPLEVENT: 0,33", "+MIPLEVENT: 0,31"]
    assert h.send("AT+MIPLOPEN?") == ["+CIS ERROR: 602"]


def test_detaching_while_logging_in_drops_the_client_and_the_login_times_out() -> None:
    h = Harness(register="silent")
    h.send("AT+MIPLCREATE")
    h.send("AT+MIPLOPEN=0,300,20")
    assert h.send("AT+CFUN=0") == ["OK"]
    assert h.client.aborted
    h.client.owner.register_succeeded()  # too late: that client is gone
    h.clock.advance(20)
    assert h.new() == ["+MIPLEVENT: 0,7"]


def test_the_client_can_report_a_lost_registration() -> None:
    h = Harness("M5311")
    h.send('AT+MIPLCREATEEX="1.2.3.4",0')
    h.send("AT+MIPLOPEN=0,300")
    h.new()
    h.client.owner.lifetime_expired()
    assert h.new() == ["+MIPLEVENT: 0,9"]
    assert h.client.aborted
    h.clock.advance(300)
    assert h.new() == []
