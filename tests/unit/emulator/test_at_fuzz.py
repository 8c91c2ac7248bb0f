"""Property tests of the AT engine over the full module: random and mutated lines never raise,
and every non-blank line gets exactly one final result code (manual §2.2)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.at.results import is_final
from emulator.module.clock import ManualClock
from emulator.module.module import Module
from tests.unit.emulator.harness import FakeClient

# Each example feeds up to 8 lines (about 4,500 lines in all) and costs about 3 ms, mostly
# hypothesis's own bookkeeping. Raise it to fuzz harder, e.g. 100_000 for a nightly run (~5 min).
FUZZ_EXAMPLES = 1_000

SEEDS = [
    "AT",
    "ATE0",
    "ATI",
    "AT+CMEE=2",
    "AT+CGSN=1",
    "AT+CFUN=0",
    "AT+MIPLCREATE",
    'AT+MIPLCREATEEX="183.230.40.40:5683",0',
    'AT+MIPLADDOBJ=0,3200,1,"1",0,0',
    'AT+MIPLDISCOVERRSP=0,3200,1,14,"5500;5501;5750"',
    "AT+MIPLOPEN=0,300,30",
    "AT+MIPLOPEN?",
    'AT+MIPLNOTIFY=0,0,3200,0,5500,5,1,"0",2,1',
    'AT+MIPLNOTIFY=0,0,3200,0,5505,2,10,"E309C82FE6",0,0x400,278',
    'AT+MIPLREADRSP=0,18172,1,3200,0,5750,1,4,"test",0,0',
    "AT+MIPLWRITERSP=0,18173,2",
    'AT+MIPLCFG="platform",0,10,"my-ep"',
    "AT+MIPLNMI=0,1,1",
    "AT+MIPLMGR=0",
    "AT+MIPLQMGR=0",
    "AT+MIPLUPDATE=0,0,0",
    "AT+MIPLCLOSE=0",
    "AT+MIPLDELETE=0",
    "AT+MIPLCREATE=49,130031F10003F2002304001100000000000000123138332E3233302E34302E34303A35363833000131F30008C000000000,0,49,0",
]

MUTATION_CHARS = ',"=?+0123456789-xAT; \t中'


def make_line(seed_index: int, noise: bytes) -> bytes:
    """A random line (seed_index past the seeds) or a seed mutated by (op, position, char) triples
    read from `noise`. Built from two draws so that hypothesis generates examples quickly."""
    if seed_index >= len(SEEDS):
        return noise.replace(b"\r", b"").replace(b"\n", b"").replace(b"\x08", b"")
    line = list(SEEDS[seed_index])
    for i in range(0, len(noise) - 2, 3):
        op, pos, char = noise[i] % 3, noise[i + 1] % (len(line) + 1), MUTATION_CHARS[noise[i + 2] % 22]
        if op == 0:
            line.insert(pos, char)
        elif pos < len(line):
            if op == 1:
                del line[pos]
            else:
                line[pos] = char
    return "".join(line).encode("utf-8")


def fresh_module(responses: list[str]) -> Module:
    return Module(
        "MN316",
        client_factory=lambda owner: FakeClient(owner),
        clock=ManualClock(),
        sink=responses.append,
        echo_sink=lambda _data: None,
    )


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, len(SEEDS)), st.binary(max_size=30)), min_size=1, max_size=8),
    st.integers(1, 7),
)
def test_every_line_gets_exactly_one_final_result_code(specs: list[tuple[int, bytes]], chunk: int) -> None:
    responses: list[str] = []
    module = fresh_module(responses)
    lines = [make_line(index, noise) for index, noise in specs]
    data = b"".join(line + b"\r" for line in lines)
    for start in range(0, len(data), chunk):
        module.feed(data[start : start + chunk])
    expected = sum(1 for line in lines if line.decode("utf-8", errors="replace").strip(" \t"))
    assert sum(1 for r in responses if is_final(r)) == expected
