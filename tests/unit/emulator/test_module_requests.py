"""Server requests and the MCU's answers: +MIPLREAD/WRITE/EXECUTE/PARAMETER/OBSERVE/DISCOVER,
AT+MIPLNOTIFY, AT+MIPL...RSP, the URC cache (AT+MIPLNMI, AT+MIPLMGR, AT+MIPLQMGR) and +MIPLNSMI
(manual §3.9-§3.19, §4.2-§4.4, §4.10, §4.11)."""

from __future__ import annotations

import asyncio

import pytest

from emulator.client.handler import ReadResult
from emulator.module.ports import Release
from lwm2m.node import LwM2MObject, ObjectInstance, SingleResource
from lwm2m.numbers import CoapCode, ContentFormat, ResourceType
from lwm2m.path import Path
from tests.unit.emulator.harness import Harness, mid_of


async def registered(model: str = "ML307R", **flags: object) -> Harness:
    h = Harness(model, **flags)
    h.setup_registered()
    await h.module.observe(Path(3200, 0), 42)
    h.new()
    return h


async def start(h: Harness, coro: object) -> tuple[asyncio.Task[object], list[str]]:
    task = asyncio.create_task(coro)  # type: ignore[arg-type]
    await asyncio.sleep(0)
    return task, h.new()


# ---------------------------------------------------------------- AT+MIPLNOTIFY


async def test_notify_goes_to_the_observation_with_its_id() -> None:
    h = await registered()
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"abcd",0,0,147') == ["OK", "+MIPLEVENT: 0,26,147"]
    (sent,) = h.client.notifications
    assert (sent.observation_id, sent.path, sent.confirmable, sent.ackid) == (42, Path(3200, 0), True, 147)
    assert sent.node == ObjectInstance(0, {5750: SingleResource(5750, "abcd", ResourceType.STRING)})


async def test_notify_without_ackid_is_non_confirmable_and_prints_no_event() -> None:
    h = await registered()
    assert h.send("AT+MIPLNOTIFY=0,0,3200,0,5700,4,4,50.8,0,0") == ["OK"]
    assert h.client.notifications[0].confirmable is False
    assert h.client.notifications[0].node.resources[5700].value == 50.8  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,test,0,0", "+CIS ERROR: 601"),  # string must be quoted
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,2,3,"ABC",0,0', "+CIS ERROR: 601"),  # odd hex
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,3,1,"x",0,0', "+CIS ERROR: 601"),
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,5,1,"2",0,0', "+CIS ERROR: 601"),
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,7,1,"1",0,0', "+CIS ERROR: 601"),
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,1,1,"1",0,3', "+CIS ERROR: 601"),  # flag 3
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,1,1,"1",1,2', "+CIS ERROR: 601"),  # middle without first
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,1,1,"1",1,1,,0', "+CIS ERROR: 601"),  # parts need TLV
        ('AT+MIPLNOTIFY=0,0,3200,0,5750,1,1,"1",0', "+CIS ERROR: 601"),  # flag missing
        ('AT+MIPLNOTIFY=0,0,3300,0,5700,1,1,"1",0,0', "+CIS ERROR: 653"),  # not observed
        ('AT+MIPLNOTIFY=1,0,3200,0,5750,1,1,"1",0,0', "+CIS ERROR: 653"),
    ],
)
async def test_notify_errors(line: str, answer: str) -> None:
    h = await registered()
    assert h.send(line) == [answer]
    assert h.client.notifications == []


async def test_notify_when_not_registered_is_602() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0') == ["+CIS ERROR: 602"]


async def test_notify_over_1000_bytes_is_refused() -> None:
    h = await registered()
    big = "AB" * 600
    assert h.send(f"AT+MIPLNOTIFY=0,0,3200,0,5505,2,1200,{big},1,1,,3") == ["OK"]
    assert h.send(f"AT+MIPLNOTIFY=0,0,3200,0,5506,2,1200,{big},0,0") == ["+CIS ERROR: 651"]
    assert h.client.notifications == []


async def test_notify_refused_by_the_client_is_uplink_busy() -> None:
    h = await registered(accept_notifies=False)
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0') == ["+CIS ERROR: 652"]


async def test_notify_hex_string_type_is_sent_as_text() -> None:
    h = await registered()
    h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,6,4,"3132",0,0')
    assert h.client.notifications[0].node.resources[5750] == SingleResource(  # type: ignore[union-attr]
        5750, "12", ResourceType.STRING
    )


async def test_notify_content_type_maps_to_a_content_format() -> None:
    h = await registered()
    h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0,,3')
    assert h.client.notifications[0].content_format == ContentFormat.TLV


@pytest.mark.parametrize(("model", "expected"), [("MN316", b"test"), ("MN319", "test"), ("MN316A", "test")])
async def test_opaque_content_type_changes_the_value_except_on_mn319_and_mn316a(
    model: str, expected: object
) -> None:
    h = await registered(model)
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0,,2') == ["OK"]
    assert h.client.notifications[0].node.resources[5750].value == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("model", "flag", "answer", "release"),
    [
        ("MN316", "0x200", ["OK"], Release.AFTER_SEND),
        ("MN316", "0x400", ["OK"], Release.AFTER_ACK),
        ("ML302A", "0x400", ["OK"], Release.AFTER_ACK),
        ("MN319", "0x200", ["OK"], Release.NONE),
        ("ML305A", "0x200", ["+CIS ERROR: 601"], None),
        ("ML307A", "0x400", ["+CIS ERROR: 601"], None),
        ("ML307R", "0x200", ["+CIS ERROR: 601"], None),
    ],
)
async def test_release_flags_per_model(
    model: str, flag: str, answer: list[str], release: Release | None
) -> None:
    h = await registered(model)
    assert h.send(f'AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,{flag}') == answer
    assert [n.release for n in h.client.notifications] == ([] if release is None else [release])


async def test_release_flags_are_plain_sends_over_dtls() -> None:
    h = Harness("MN316")
    h.send('AT+MIPLCREATEEX="1.2.3.4:5684",0,,"abc"')
    h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0')
    h.send("AT+MIPLOPEN=0,300")
    await h.module.observe(Path(3200, 0), 1)
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0x200') == ["OK"]
    assert h.client.notifications[0].release is Release.NONE


async def test_notify_on_an_object_observation_packs_instances() -> None:
    h = Harness()
    h.setup_registered('AT+MIPLADDOBJ=0,3303,2,"11",0,0')
    await h.module.observe(Path(3303), 5)
    assert h.send("AT+MIPLNOTIFY=0,0,3303,0,5700,4,4,20.5,1,1,,3") == ["OK"]
    assert h.send("AT+MIPLNOTIFY=0,0,3303,1,5700,4,4,21.5,0,0,,3") == ["OK"]
    node = h.client.notifications[0].node
    assert isinstance(node, LwM2MObject) and sorted(node.instances) == [0, 1]


# ---------------------------------------------------------------- +MIPLNSMI


async def test_nsmi_reports_mid_and_127() -> None:
    h = await registered("MN316")
    h.send("AT+MIPLNMI=0,0,1")
    assert h.send('AT+MIPLNOTIFY=0,300,3200,0,5750,1,4,"test",0,0') == ["OK", "+MIPLNSMI: 0,1,44"]


async def test_m5311_numbers_nsmi_1_to_128_and_refuses_mid_0() -> None:
    h = await registered("M5311")
    h.send("AT+MIPLNMI=0,0,1")
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0') == ["+CIS ERROR: 601"]
    assert h.send('AT+MIPLNOTIFY=0,128,3200,0,5750,1,4,"test",0,0') == ["OK", "+MIPLNSMI: 0,1,128"]


@pytest.mark.parametrize("model", ["ML305A", "ML307A", "ML307R"])
async def test_ml30x_models_have_no_send_reports(model: str) -> None:
    h = await registered(model)
    assert h.send("AT+MIPLNMI=0,0,1") == ["+CIS ERROR: 601"]
    assert h.send("AT+MIPLNMI=0,1,0") == ["OK"]


async def test_nmi_query_and_errors() -> None:
    h = Harness("MN319")
    assert h.send("AT+MIPLNMI=0,1,1") == ["+CIS ERROR: 653"]
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLNMI=0,3,0") == ["+CIS ERROR: 601"]
    assert h.send("AT+MIPLNMI=0,2,1") == ["OK"]  # MN319 has send reports since V4.3.0
    assert h.send("AT+MIPLNMI?") == ["+MIPLNMI: 0,2,1", "OK"]


# ---------------------------------------------------------------- read


async def test_read_response_errors() -> None:
    h = await registered()
    task, (urc,) = await start(h, h.module.read(Path(3200, 0)))
    mid = mid_of(urc)
    assert h.send(f"AT+MIPLREADRSP=0,{mid + 1},11") == ["+CIS ERROR: 653"]
    assert h.send(f"AT+MIPLREADRSP=0,{mid},2") == ["+CIS ERROR: 601"]
    assert h.send(f"AT+MIPLREADRSP=0,{mid},1") == ["+CIS ERROR: 601"]
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3300,0,5700,1,1,"a",0,0') == ["+CIS ERROR: 601"]
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5750,1,1,"a",0,2') == ["+CIS ERROR: 601"]
    assert h.send(f"AT+MIPLREADRSP=0,{mid},1,3200,0,5750,3,1,abc,0,0") == ["+CIS ERROR: 601"]
    assert h.send(f"AT+MIPLREADRSP=0,{mid},13") == ["OK"]
    assert (await task).code is CoapCode.NOT_FOUND  # type: ignore[attr-defined]


async def test_read_of_a_single_resource_returns_a_resource_node() -> None:
    h = await registered()
    task, (urc,) = await start(h, h.module.read(Path(3200, 0, 5750)))
    h.send(f'AT+MIPLREADRSP=0,{mid_of(urc)},1,3200,0,5750,1,4,"test",0,0')
    assert await task == ReadResult(CoapCode.CONTENT, SingleResource(5750, "test", ResourceType.STRING))


async def test_read_times_out_after_5_s_with_503() -> None:
    h = await registered()
    task, (urc,) = await start(h, h.module.read(Path(3200, 0, 5750)))
    h.clock.advance(5)
    assert (await task).code is CoapCode.SERVICE_UNAVAILABLE  # type: ignore[attr-defined]
    assert h.send(f"AT+MIPLREADRSP=0,{mid_of(urc)},11") == ["+CIS ERROR: 653"]


async def test_reads_of_unknown_objects_are_404_without_a_urc() -> None:
    h = await registered()
    assert (await h.module.read(Path(3300, 0))).code is CoapCode.NOT_FOUND
    assert (await h.module.read(Path(3200, 1))).code is CoapCode.NOT_FOUND
    assert h.new() == []


@pytest.mark.parametrize(
    ("model", "result", "code"),
    [
        ("ML307R", 17, CoapCode.REQUEST_ENTITY_INCOMPLETE),
        ("ML307A", 16, CoapCode.CONTINUE),
        ("MN316", 17, None),
    ],
)
async def test_ml307_result_codes_16_to_19(model: str, result: int, code: CoapCode | None) -> None:
    h = await registered(model)
    task, (urc,) = await start(h, h.module.read(Path(3200, 0)))
    answer = h.send(f"AT+MIPLREADRSP=0,{mid_of(urc)},{result}")
    if code is None:
        assert answer == ["+CIS ERROR: 601"]
        task.cancel()
    else:
        assert answer == ["OK"]
        assert (await task).code is code  # type: ignore[attr-defined]


async def test_the_module_answers_reads_of_its_device_object() -> None:
    h = await registered()
    result = await h.module.read(Path(3, 0, 2))
    assert result == ReadResult(CoapCode.CONTENT, SingleResource(2, "869975030000461", ResourceType.STRING))
    assert h.new() == []


async def test_onenet_monitor_object_is_answered_when_the_monitor_is_on() -> None:
    on = Harness()
    on.send('AT+MIPLCREATEEX="183.230.40.40:5683",0')
    on.send("AT+MIPLOPEN=0,300")
    assert (await on.module.read(Path(10290, 0, 3))).node == SingleResource(3, 120, ResourceType.INTEGER)
    off = Harness()
    off.send('AT+MIPLCREATEEX="183.230.40.40:5683",2')
    off.send("AT+MIPLOPEN=0,300")
    assert (await off.module.read(Path(10290, 0))).code is CoapCode.NOT_FOUND


# ---------------------------------------------------------------- write / execute / attributes


async def test_write_of_an_undeclared_resource_prints_hex_string_type_6() -> None:
    h = await registered()
    task, (urc,) = await start(
        h, h.module.write(Path(3200, 0, 5505), SingleResource(5505, "4567", ResourceType.STRING), True)
    )
    assert urc.endswith(",3200,0,5505,6,8,34353637,0")
    h.send(f"AT+MIPLWRITERSP=0,{mid_of(urc)},11")
    assert await task is CoapCode.BAD_REQUEST


async def test_write_prints_the_declared_type() -> None:
    h = await registered()
    h.send("AT+MIPLNOTIFY=0,0,3200,0,5700,4,4,50.8,0,0")
    h.send('AT+MIPLNOTIFY=0,0,3200,0,5505,2,2,"AB",0,0')
    h.new()
    node = ObjectInstance(
        0,
        {
            5700: SingleResource(5700, 24.5, ResourceType.FLOAT),
            5505: SingleResource(5505, b"\x01\x02", ResourceType.OPAQUE),
        },
    )
    task, lines = await start(h, h.module.write(Path(3200, 0), node, False))
    assert [x.split(",", 2)[2] for x in lines] == ["3200,0,5700,4,4,24.5,1", "3200,0,5505,2,4,0102,0"]
    assert h.send(f"AT+MIPLWRITERSP=0,{mid_of(lines[0])},1") == ["+CIS ERROR: 601"]
    h.send(f"AT+MIPLWRITERSP=0,{mid_of(lines[0])},2")
    assert await task is CoapCode.CHANGED


async def test_write_and_execute_answers_are_checked_against_the_operation() -> None:
    h = await registered()
    task, (urc,) = await start(h, h.module.execute(Path(3200, 0, 5750), ""))
    assert urc.endswith(",3200,0,5750")  # no <len>,<cmd> without arguments
    assert h.send(f"AT+MIPLWRITERSP=0,{mid_of(urc)},2") == ["+CIS ERROR: 653"]
    assert h.send(f"AT+MIPLEXECUTERSP=0,{mid_of(urc)},14") == ["OK"]
    assert await task is CoapCode.METHOD_NOT_ALLOWED


async def test_ctwing_object_19_downlink_is_acknowledged_by_the_module() -> None:
    h = Harness("MN316")
    h.send('AT+MIPLCREATEEX="221.229.214.202:5683",0')
    h.send('AT+MIPLCFG="platform",0,1')
    h.send('AT+MIPLADDOBJ=0,19,2,"11",0,0')
    h.send('AT+MIPLDISCOVERRSP=0,19,1,3,"1;0"')
    h.send("AT+MIPLOPEN=0,3000,30")
    h.new()
    code = await h.module.write(Path(19, 1, 0), SingleResource(0, b"4567", ResourceType.OPAQUE), True)
    assert code is CoapCode.CHANGED
    (urc,) = h.new()
    assert urc.startswith("+MIPLWRITE: 0,") and urc.endswith(",19,1,0,2,8,34353637,0")  # manual §5.3


async def test_write_attributes_rules_of_the_parameter_note() -> None:
    h = await registered()
    bad = [
        (Path(3200, 0, 5750), {"pmin": "90", "pmax": "18"}),
        (Path(3200, 0, 5750), {"lt": "50", "gt": "10"}),
        (Path(3200, 0, 5750), {"lt": "0", "gt": "10", "st": "5"}),
        (Path(3200, 0), {"gt": "10"}),
        (Path(3200, 0), {"pmin": "x"}),
    ]
    for path, attributes in bad:
        assert await h.module.write_attributes(path, attributes) is CoapCode.BAD_REQUEST
    assert h.new() == []
    assert await h.module.write_attributes(Path(3200, 0), {"pmin": "10", "pmax": None}) is CoapCode.CHANGED
    assert h.new()[0].endswith(',3200,0,-1,7,"pmin=10"')


async def test_discover_prints_a_urc_and_lists_the_resource_list() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0')
    h.send('AT+MIPLDISCOVERRSP=0,3200,1,9,"5500;5750"')
    h.send("AT+MIPLOPEN=0,300")
    h.new()
    result = await h.module.discover(Path(3200))
    (urc,) = h.new()
    assert urc.startswith("+MIPLDISCOVER: 0,") and urc.endswith(",3200")
    assert [str(p) for p, _a in result.links] == ["/3200", "/3200/0", "/3200/0/5500", "/3200/0/5750"]


async def test_observe_and_cancel_print_flag_1_and_0() -> None:
    h = await registered()
    result = await h.module.observe(Path(3200, 0, 5750), 77)
    assert result.code is CoapCode.CONTENT
    assert await h.module.cancel_observation(Path(3200, 0, 5750), 77) is CoapCode.CONTENT
    first, second = h.new()
    assert first.endswith(",1,3200,0,5750") and second.endswith(",0,3200,0,5750")
    assert await h.module.cancel_observation(Path(3200, 0, 5750), 77) is CoapCode.NOT_FOUND


async def test_create_and_delete_are_not_allowed() -> None:
    h = await registered()
    assert await h.module.create(Path(3200), ObjectInstance(1)) == (CoapCode.METHOD_NOT_ALLOWED, None)
    assert await h.module.delete(Path(3200, 0)) is CoapCode.METHOD_NOT_ALLOWED


# ---------------------------------------------------------------- the URC cache


async def test_the_cache_keeps_40_operations_and_drops_the_oldest() -> None:
    h = await registered()
    h.send("AT+MIPLNMI=0,2,0")
    tasks = [asyncio.create_task(h.module.read(Path(3200, 0))) for _ in range(41)]
    await asyncio.sleep(0)
    assert h.send("AT+MIPLQMGR=0") == ["+MIPLQMGR: 0,QUEUES=40,DROPPED=1,BUFFERS=0", "OK"]
    assert (await tasks[0]).code is CoapCode.SERVICE_UNAVAILABLE
    for task in tasks[1:]:
        task.cancel()


async def test_the_cache_refuses_write_data_beyond_2k() -> None:
    h = await registered()
    h.send("AT+MIPLNMI=0,1,0")
    data = SingleResource(5505, b"x" * 1000, ResourceType.OPAQUE)
    first = asyncio.create_task(h.module.write(Path(3200, 0, 5505), data, True))
    second = asyncio.create_task(h.module.write(Path(3200, 0, 5505), data, True))
    third = asyncio.create_task(h.module.write(Path(3200, 0, 5505), data, True))
    await asyncio.sleep(0)
    assert await third is CoapCode.SERVICE_UNAVAILABLE
    assert h.send("AT+MIPLQMGR=0") == ["+MIPLQMGR: 0,QUEUES=2,DROPPED=1,BUFFERS=2000", "OK"]
    first.cancel()
    second.cancel()


async def test_cached_operations_wait_25_s_and_large_writes_bypass_the_cache() -> None:
    h = await registered()
    h.send("AT+MIPLNMI=0,1,0")
    task, lines = await start(h, h.module.read(Path(3200, 0)))
    assert lines == ["+MIPLNMI: 0"]
    h.clock.advance(24)
    assert not task.done()
    h.clock.advance(1)
    assert (await task).code is CoapCode.SERVICE_UNAVAILABLE  # type: ignore[attr-defined]
    big = SingleResource(5505, b"x" * 1100, ResourceType.OPAQUE)
    write, lines = await start(h, h.module.write(Path(3200, 0, 5505), big, True))
    assert lines[0].startswith("+MIPLWRITE: ")  # block-wise: shown directly (§4.2 note)
    write.cancel()


async def test_mgr_in_direct_mode_answers_ok_and_needs_a_login() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLMGR=0") == ["+CIS ERROR: 602"]
    assert h.send("AT+MIPLQMGR=0") == ["+MIPLQMGR: 0,QUEUES=0,DROPPED=0,BUFFERS=0", "OK"]
    h.send("AT+MIPLOPEN=0,300")
    assert h.send("AT+MIPLMGR=0") == ["OK"]
    assert h.send("AT+MIPLMGR=1") == ["+CIS ERROR: 653"]


async def test_asyncio_scheduler_drives_the_response_timeout() -> None:
    from emulator.module.clock import AsyncioScheduler
    from emulator.module.module import Module
    from tests.unit.emulator.harness import FakeClient

    lines: list[str] = []
    module = Module(
        "MN316",
        client_factory=lambda owner: FakeClient(owner),
        clock=AsyncioScheduler(),
        sink=lines.append,
        echo=False,
        response_timeout=0.01,
    )
    for line in ('AT+MIPLCREATEEX="1.2.3.4",0', 'AT+MIPLADDOBJ=0,3200,1,"1",0,0', "AT+MIPLOPEN=0,300"):
        module.send_line(line)
    result = await module.read(Path(3200, 0))
    assert result.code is CoapCode.SERVICE_UNAVAILABLE
    assert lines[-1].startswith("+MIPLREAD: 0,")


def test_the_client_owner_offers_every_protocol_method() -> None:
    import inspect

    from emulator.client.handler import RequestHandler
    from emulator.module.ports import ClientEvents
    from emulator.module.session import Session

    for protocol in (RequestHandler, ClientEvents):
        wanted = {n for n, _ in inspect.getmembers(protocol, inspect.isfunction) if not n.startswith("_")}
        missing = {n for n in wanted if not callable(getattr(Session, n, None))}
        assert missing == set(), protocol
