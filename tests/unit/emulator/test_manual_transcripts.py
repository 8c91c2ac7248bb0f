"""Replays of the example transcripts of the OneMO LwM2M AT manual V4.4.0, chapters 3 and 4.

Lines the module prints are compared one by one; message ids of request URCs are normalised
(`harness.normalise`), and the MCU's answers use the id the module actually printed. Where the
manual's example has a typo (§3.19 `+MIPOBSERVE=`, `AT+MIPLWRITEOBSERVERSP`), the corrected
command is replayed and the test says so.
"""

from __future__ import annotations

import asyncio

from lwm2m.node import ObjectInstance, SingleResource
from lwm2m.numbers import CoapCode, ResourceType
from lwm2m.path import Path
from tests.unit.emulator.harness import Harness, mid_of, normalise


def test_3_1_create_execute_form() -> None:
    h = Harness()
    assert h.send("AT+MIPLCREATE") == ["+MIPLCREATE: 0", "OK"]


def test_3_2_delete() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLDELETE=0") == ["OK"]


def test_3_4_delete_object() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0')
    assert h.send("AT+MIPLDELOBJ=0,3200") == ["OK"]


def test_3_5_discover_response_list() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    h.send('AT+MIPLADDOBJ=0,3200,1,"1",0,0')
    assert h.send('AT+MIPLDISCOVERRSP=0,3200,1,14,"5500;5501;5750"') == ["OK"]


def test_3_6_open_success_failure_and_query() -> None:
    h = Harness()
    h.send('AT+MIPLCREATEEX="183.230.40.40:5683",0')
    assert h.send("AT+MIPLOPEN=0,300,30") == ["OK", "+MIPLEVENT: 0,6"]
    assert h.send("AT+MIPLOPEN?") == ["OK", "+MIPLEVENT: 0,6"]
    failing = Harness(register="fail")
    failing.send('AT+MIPLCREATEEX="183.230.40.40:5683",0')
    assert failing.send("AT+MIPLOPEN=0,300,30") == ["OK", "+MIPLEVENT: 0,7"]


def test_3_7_update_with_short_lifetime_uses_a_day() -> None:
    h = Harness()
    h.setup_registered()
    assert h.send("AT+MIPLUPDATE=0,0,0") == ["OK", "+MIPLEVENT: 0,11"]
    assert h.client.updates == [(86400, False)]


def test_3_8_close() -> None:
    h = Harness()
    h.setup_registered()
    assert h.send("AT+MIPLCLOSE=0") == ["OK", "+MIPLEVENT: 0,15"]


async def test_3_9_notify_examples() -> None:
    h = Harness("MN316")
    h.setup_registered()
    await h.module.observe(Path(3200, 0), 7)
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5500,5,1,"0",2,1') == ["OK"]
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5501,3,3,"-12",1,2') == ["OK"]
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0') == ["OK"]
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5505,2,10,"E309C82FE6",0,0x400,278') == [
        "OK",
        "+MIPLEVENT: 0,26,278",
    ]
    first, second = h.client.notifications
    assert first.node == ObjectInstance(
        0,
        {
            5500: SingleResource(5500, False, ResourceType.BOOLEAN),
            5501: SingleResource(5501, -12, ResourceType.INTEGER),
            5750: SingleResource(5750, "test", ResourceType.STRING),
        },
    )
    assert second.node == ObjectInstance(
        0, {5505: SingleResource(5505, bytes.fromhex("E309C82FE6"), ResourceType.OPAQUE)}
    )
    assert second.confirmable and second.ackid == 278


async def test_3_10_3_11_read_examples() -> None:
    h = Harness()
    h.setup_registered()
    task = asyncio.create_task(h.module.read(Path(3200, 0, 5750)))
    await asyncio.sleep(0)
    (urc,) = h.new()
    assert normalise(urc) == normalise("+MIPLREAD:0,18172,3200,0,5750")
    assert h.send(f"AT+MIPLREADRSP=0,{mid_of(urc)},11") == ["OK"]
    assert (await task).code is CoapCode.BAD_REQUEST

    task = asyncio.create_task(h.module.read(Path(3200, 0)))
    await asyncio.sleep(0)
    (urc,) = h.new()
    assert normalise(urc) == normalise("+MIPLREAD:0,18172,3200,0,-1")
    mid = mid_of(urc)
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5500,5,1,"0",2,1') == ["OK"]
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5501,3,3,"-12",1,2') == ["OK"]
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5750,1,4,"test",0,0') == ["OK"]
    result = await task
    assert result.code is CoapCode.CONTENT
    assert isinstance(result.node, ObjectInstance)
    assert sorted(result.node.resources) == [5500, 5501, 5750]


async def _declare_string_5750(h: Harness) -> None:
    await h.module.observe(Path(3200, 0), 1)
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0') == ["OK"]
    h.new()


async def test_3_12_3_13_write_example() -> None:
    h = Harness()
    h.setup_registered()
    await _declare_string_5750(h)
    task = asyncio.create_task(
        h.module.write(Path(3200, 0, 5750), SingleResource(5750, "test", ResourceType.STRING), True)
    )
    await asyncio.sleep(0)
    (urc,) = h.new()
    assert normalise(urc) == normalise("+MIPLWRITE: 0,18173,3200,0,5750,1,4,test,0")
    assert h.send(f"AT+MIPLWRITERSP=0,{mid_of(urc)},2") == ["OK"]
    assert await task is CoapCode.CHANGED


async def test_3_14_3_15_execute_example() -> None:
    h = Harness()
    h.setup_registered()
    task = asyncio.create_task(h.module.execute(Path(3200, 0, 5750), "test"))
    await asyncio.sleep(0)
    (urc,) = h.new()
    assert normalise(urc) == normalise('+MIPLEXECUTE: 0,18174,3200,0,5750,4,"test"')
    assert h.send(f"AT+MIPLEXECUTERSP=0,{mid_of(urc)},2") == ["OK"]
    assert await task is CoapCode.CHANGED


async def test_3_16_3_17_parameter_example() -> None:
    h = Harness()
    h.setup_registered()
    attributes = {"pmin": "18", "pmax": "90", "lt": "0.0", "gt": "60.0", "stp": "2.0"}
    assert await h.module.write_attributes(Path(3200, 0, 5750), attributes) is CoapCode.CHANGED
    (urc,) = h.new()
    # The manual prints "pmin= 18" in §3.17 and "pmin=18" in §3.19; its length 38 fits the latter.
    assert normalise(urc) == normalise(
        '+MIPLPARAMETER: 0,18174,3200,0,5750,38,"pmin=18;pmax=90;lt=0.0;gt=60.0;stp=2.0"'
    )
    assert h.send(f"AT+MIPLPARAMETERRSP=0,{mid_of(urc)},1") == ["OK"]


async def test_3_19_observe_example_with_the_manual_typos_corrected() -> None:
    h = Harness()
    h.setup_registered()
    result = await h.module.observe(Path(3200, 0, 5750), 99)
    assert result.code is CoapCode.CONTENT
    (urc,) = h.new()
    # Manual: "+MIPOBSERVE=0,18175,1,3200,0,5750" then "AT+MIPLWRITEOBSERVERSP=0,18175,1".
    assert normalise(urc) == normalise("+MIPLOBSERVE: 0,18175,1,3200,0,5750")
    assert h.send(f"AT+MIPLOBSERVERSP=0,{mid_of(urc)},1") == ["OK"]


def test_4_1_cfg_platform() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send('AT+MIPLCFG="platform",0,1') == ["OK"]


def test_4_2_nmi() -> None:
    h = Harness("MN316")
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLNMI=0,1,1") == ["OK"]


async def test_4_3_mgr_example() -> None:
    h = Harness()
    h.setup_registered()
    assert h.send("AT+MIPLNMI=0,1,0") == ["OK"]
    read = asyncio.create_task(h.module.read(Path(3200, 0)))
    await asyncio.sleep(0)
    assert h.new() == ["+MIPLNMI: 0"]
    first = h.send("AT+MIPLMGR=0")
    assert [normalise(x) for x in first] == [normalise("+MIPLREAD: 0,8172,3200,0,-1"), "OK"]
    assert h.send("AT+MIPLMGR=0") == first  # not answered yet: the same operation again
    mid = mid_of(first[0])
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5500,5,1,"0",2,1') == ["OK"]
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5501,3,3,"-12",1,2') == ["OK"]
    assert h.send(f'AT+MIPLREADRSP=0,{mid},1,3200,0,5750,1,4,"test",0,0') == ["OK"]
    assert (await read).code is CoapCode.CONTENT
    node = ObjectInstance(
        0,
        {
            5501: SingleResource(5501, 1860, ResourceType.INTEGER),
            5750: SingleResource(5750, "test", ResourceType.STRING),
        },
    )
    write = asyncio.create_task(h.module.write(Path(3200, 0), node, False))
    await asyncio.sleep(0)
    assert h.new() == ["+MIPLNMI: 0"]
    lines = h.send("AT+MIPLMGR=0")
    # The manual's example prints a tenth field ("1860,1,0"); §3.12 defines nine, which we follow.
    assert [normalise(x) for x in lines] == [
        normalise("+MIPLWRITE: 0,8173,3200,0,5501,3,4,1860,1"),
        normalise("+MIPLWRITE: 0,8173,3200,0,5750,1,4,test,0"),
        "OK",
    ]
    assert h.send(f"AT+MIPLWRITERSP=0,{mid_of(lines[0])},2") == ["OK"]
    assert await write is CoapCode.CHANGED
    assert h.send("AT+MIPLMGR=0") == ["OK"]
    h.send("AT+MIPLCLOSE=0")
    assert h.send("AT+MIPLMGR=0") == ["+CIS ERROR: 602"]


async def test_4_4_qmgr_example() -> None:
    h = Harness()
    h.setup_registered()
    h.send("AT+MIPLNMI=0,2,0")
    tasks = [
        asyncio.create_task(h.module.read(Path(3200, 0))),
        asyncio.create_task(h.module.write(Path(3200, 0, 5750), SingleResource(5750, "abcd"), True)),
        asyncio.create_task(h.module.execute(Path(3200, 0, 5750), "abcdefgh")),
    ]
    await asyncio.sleep(0)
    assert h.new() == []  # nnmi 2: nothing is shown
    assert h.send("AT+MIPLQMGR=0") == ["+MIPLQMGR: 0,QUEUES=3,DROPPED=0,BUFFERS=12", "OK"]
    h.send("AT+MIPLDELETE=0")
    assert [r.code for r in [await tasks[0]]] == [CoapCode.SERVICE_UNAVAILABLE]


def test_4_5_update_set() -> None:
    h = Harness("ML307R")
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLUPDATESET=0,1") == ["OK"]


def test_4_6_create_ex() -> None:
    h = Harness()
    assert h.send('AT+MIPLCREATEEX="nbiotbt.heclouds.com",1') == ["+MIPLCREATEEX: 0", "OK"]


def test_4_7_devinfo() -> None:
    h = Harness()
    h.send('AT+MIPLCREATEEX="183.230.40.149:5684",1,"abcd1234"')
    assert h.send("AT+MIPLDEVINFO?") == ['+MIPLDEVINFO: "183.230.40.149:5684", 1, "abcd1234"', "OK"]


def test_4_8_dtls_nat() -> None:
    h = Harness()
    h.send("AT+MIPLCREATE")
    assert h.send("AT+MIPLDTLSNAT=0,120") == ["OK"]


def test_4_9_ltrdp_on_m5310a() -> None:
    h = Harness("M5310-A")
    h.send('AT+MIPLCREATEEX="183.230.40.40:5683",0')
    h.send("AT+MIPLOPEN=0,3000,30")
    h.clock.advance(913)
    assert h.send("AT+MIPLLTRDP") == ["+MIPLLTRDP: 2087", "OK"]


async def test_4_10_nsmi_example() -> None:
    h = Harness("MN316")
    h.setup_registered()
    h.send("AT+MIPLNMI=0,0,1")
    await h.module.observe(Path(3200, 0), 3)
    h.new()
    assert h.send('AT+MIPLNOTIFY=0,0,3200,0,5750,1,4,"test",0,0') == ["OK", "+MIPLNSMI: 0,1,0"]
    h.module.mids = iter([18173])  # the manual's message id, so that mid & 127 is 125
    task = asyncio.create_task(h.module.write(Path(3200, 0, 5750), SingleResource(5750, "x"), True))
    await asyncio.sleep(0)
    (urc,) = h.new()
    assert mid_of(urc) == 18173
    assert h.send("AT+MIPLWRITERSP=0,18173,2") == ["OK", "+MIPLNSMI: 0,1,125"]
    await task


async def test_4_11_nmi_notice() -> None:
    h = Harness()
    h.setup_registered()
    assert h.send("AT+MIPLNMI=0,1,0") == ["OK"]
    task = asyncio.create_task(h.module.read(Path(3200, 0, 5750)))
    await asyncio.sleep(0)
    assert h.new() == ["+MIPLNMI: 0"]
    task.cancel()
