"""emulator/hosting.py: the module host behind the console's AT terminal. Output bytes as the
serial port carries them (manual §2.1 framing) become text lines; AT+MIPLCREATEEX (manual §4.6)
gives the hosted module its platform and endpoint name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from emulator.at.results import is_final
from emulator.hosting import QUICK_LINES, LineSplitter, ModuleHost
from emulator.module.models import MODELS, capabilities

IMEI = "869975030000461"
IMSI = "460041234567890"


def test_line_splitter_ends_lines_at_cr_lf_or_crlf_even_across_chunks() -> None:
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    for chunk in (b"AT\r", b"\r\nO", b"K\r", b"\n\r\n+MIPLEVENT: 0,6\r\n", b"partial"):
        splitter.feed(chunk)
    assert lines == ["AT", "OK", "+MIPLEVENT: 0,6"]
    splitter.feed(b" line\n")
    assert lines[-1] == "partial line"


@pytest.fixture
async def host() -> AsyncIterator[ModuleHost]:
    modules = ModuleHost()
    yield modules
    await modules.close()


async def until(lines: list[str], text: str) -> None:
    async with asyncio.timeout(2):
        while text not in lines:
            await asyncio.sleep(0.01)


async def test_sent_lines_reach_the_module_and_its_output_reaches_subscribers(host: ModuleHost) -> None:
    module_id = await host.start_module("ML307R", imei=IMEI, imsi=IMSI)
    assert module_id == IMEI
    lines: list[str] = []
    unsubscribe = host.subscribe(module_id, lines.append)
    await host.send(module_id, "AT+CGSN=1")
    await until(lines, "OK")
    assert lines == ["AT+CGSN=1", f'+CGSN: "{IMEI}"', "OK"]
    unsubscribe()
    await host.send(module_id, "AT")
    await asyncio.sleep(0.05)
    assert lines[-1] == "OK" and len(lines) == 3


async def test_listing_follows_the_devices_created_over_at(host: ModuleHost) -> None:
    module_id = await host.start_module("ML307R", imei=IMEI, imsi=IMSI)
    (info,) = host.list()
    assert info.as_dict() == {
        "id": module_id,
        "model": "ML307R",
        "imei": IMEI,
        "imsi": IMSI,
        "endpoint": None,
        "carrier": None,
        "quick_lines": info.quick_lines,
    }
    lines: list[str] = []
    host.subscribe(module_id, lines.append)
    await host.send(module_id, 'AT+MIPLCREATEEX="127.0.0.1:5683",0')
    await until(lines, "OK")
    (info,) = host.list()
    assert (info.carrier, info.endpoint) == ("onenet", f"{IMEI};{IMSI}")


async def test_module_ids_stay_unique_and_unknown_ids_are_refused(host: ModuleHost) -> None:
    first = await host.start_module("ML307R", imei=IMEI, imsi=IMSI)
    second = await host.start_module("MN316", imei=IMEI, imsi=IMSI)
    assert (first, second) == (IMEI, f"{IMEI}-2")
    assert [m.model for m in host.list()] == ["ML307R", "MN316"]
    with pytest.raises(KeyError):
        await host.send("nope", "AT")
    await host.remove(first)
    assert [m.id for m in host.list()] == [second]


@pytest.mark.parametrize("model", sorted(MODELS))
async def test_quick_lines_are_only_commands_the_model_answers(host: ModuleHost, model: str) -> None:
    """The console's quick AT buttons (issue 16): AT+MIPLVER? is not in the manual and answers
    ERROR everywhere; AT+MIPLUPDATESET exists on some models only (manual §4.5 note). Each quick
    line, typed into a fresh module of the model, is a command it knows (never a plain ERROR)."""
    module_id = await host.start_module(model, imei=IMEI, imsi=IMSI)
    info = next(m for m in host.list() if m.id == module_id)
    assert "AT+MIPLVER?" not in info.quick_lines
    assert ("AT+MIPLUPDATESET=0,1" in info.quick_lines) == (
        "+MIPLUPDATESET" in capabilities(model).optional_commands
    )
    assert set(info.quick_lines) <= set(QUICK_LINES) and "AT+MIPLCREATE" in info.quick_lines
    lines: list[str] = []
    host.subscribe(module_id, lines.append)
    for line in info.quick_lines:
        lines.clear()
        await host.send(module_id, line)
        async with asyncio.timeout(2):
            while not any(is_final(text) for text in lines):
                await asyncio.sleep(0.01)
        assert "ERROR" not in lines, (model, line, lines)
    await host.send(module_id, "AT+MIPLVER?")  # the line the console offered before
    async with asyncio.timeout(2):
        while "ERROR" not in lines:
            await asyncio.sleep(0.01)
