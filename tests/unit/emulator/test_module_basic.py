"""Basic modem commands (V.250, 3GPP TS 27.007) of the emulated module, with configurable identity
and network state."""

from __future__ import annotations

import pytest

from emulator.module.clock import ManualClock
from emulator.module.module import Module
from tests.unit.emulator.harness import Harness


def custom() -> tuple[Module, list[str]]:
    lines: list[str] = []
    module = Module(
        "MN316",
        imei="861234567890123",
        imsi="460001234567890",
        iccid="89860012345678901234",
        clock=ManualClock(),
        sink=lines.append,
        echo=False,
    )
    return module, lines


@pytest.mark.parametrize(
    ("line", "answer"),
    [
        ("AT", ["OK"]),
        ("at", ["OK"]),
        ("ATI", ["CMIOT", "MN316", "Revision: MN316_V1.3.0", "OK"]),
        ("AT+CGMI", ["CMIOT", "OK"]),
        ("AT+CGMM", ["MN316", "OK"]),
        ("AT+CGMR", ["MN316_V1.3.0", "OK"]),
        ("AT+CGSN", ["861234567890123", "OK"]),
        ("AT+CGSN=1", ['+CGSN: "861234567890123"', "OK"]),
        ("AT+CIMI", ["460001234567890", "OK"]),
        ("AT+ICCID", ["+ICCID: 89860012345678901234", "OK"]),
        ("AT+CCID", ["+CCID: 89860012345678901234", "OK"]),
        ("AT+CSQ", ["+CSQ: 25,99", "OK"]),
        ("AT+CEREG?", ["+CEREG: 0,1", "OK"]),
        ("AT+CGATT?", ["+CGATT: 1", "OK"]),
        ("AT+CFUN?", ["+CFUN: 1", "OK"]),
        ("AT+CPIN?", ["+CPIN: READY", "OK"]),
        ("AT+CCLK?", ['+CCLK: "24/01/01,08:00:00+32"', "OK"]),
        ("AT+CMEE?", ["+CMEE: 1", "OK"]),
        ("AT+CGSN=2", ["+CME ERROR: 50"]),
        ("AT+CFUN=9", ["+CME ERROR: 50"]),
    ],
)
def test_basic_commands(line: str, answer: list[str]) -> None:
    module, lines = custom()
    module.send_line(line)
    assert lines == answer


def test_cfun_0_detaches_and_the_signal_is_gone() -> None:
    module, lines = custom()
    for line in ("AT+CFUN=0", "AT+CGATT?", "AT+CSQ", "AT+CEREG=1", "AT+CEREG?", "AT+CGATT=1"):
        module.send_line(line)
    assert lines == ["OK", "+CGATT: 0", "OK", "+CSQ: 99,99", "OK", "OK", "+CEREG: 1,0", "OK", "+CME ERROR: 3"]


def test_missing_sim_is_cme_error_10() -> None:
    module, lines = custom()
    module.network.sim_ready = False
    module.send_line("AT+CPIN?")
    module.send_line("AT+CIMI")
    assert lines == ["+CME ERROR: 10", "+CME ERROR: 10"]


def test_cclk_follows_the_injected_clock() -> None:
    clock = ManualClock()
    lines: list[str] = []
    module = Module("ML307R", clock=clock, sink=lines.append, echo=False)
    clock.advance(3661)
    module.send_line("AT+CCLK?")
    assert lines == ['+CCLK: "24/01/01,09:01:01+32"', "OK"]


def test_echo_then_response_on_the_module() -> None:
    h = Harness(echo=True)
    assert h.send("AT+CGMM") == ["AT+CGMM", "ML307R", "OK"]
    assert h.send("ATE0") == ["ATE0", "OK"]
    assert h.send("AT+CGMM") == ["ML307R", "OK"]


def test_unknown_model_is_refused_at_construction() -> None:
    with pytest.raises(KeyError):
        Module("MN999", clock=ManualClock(), sink=lambda _line: None)
