"""The scenario runner (emulator.scenarios.runner): sends, expects, captures, timeouts, actions
and its failure messages, over a scripted fake port and over an in-process emulated module."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from emulator.runner import EmulatedModule
from emulator.scenarios import ModuleTransport, ScenarioFailed, parse_script, run_scenario
from emulator.scenarios.runner import LineSplitter

IMEI = "869975030000461"


class FakePort:
    """Answers each sent line with the lines `replies` gives for it; `late` lines come after a
    delay (a URC)."""

    def __init__(self, replies: dict[str, list[str]], late: dict[str, list[str]] | None = None) -> None:
        self.replies = replies
        self.late = late or {}
        self.sent: list[str] = []
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    async def send_line(self, line: str) -> None:
        self.sent.append(line)
        for reply in self.replies.get(line, ["ERROR"]):
            self.queue.put_nowait(reply)
        if line in self.late:
            asyncio.get_running_loop().call_later(
                0.05, lambda: [self.queue.put_nowait(x) for x in self.late[line]]
            )

    async def read_line(self) -> str:
        return await self.queue.get()


async def test_captured_field_is_used_in_a_later_send() -> None:
    port = FakePort(
        {"AT+MIPLOPEN=0,3000": ["OK"], "AT+MIPLOBSERVERSP=0,4242,1": ["OK"]},
        late={"AT+MIPLOPEN=0,3000": ["+MIPLEVENT: 0,6", "+MIPLOBSERVE: 0,4242,1,3303,0,-1"]},
    )
    script = parse_script(
        "send AT+MIPLOPEN=0,3000\nexpect OK\nexpect +MIPLOBSERVE: 0,<obs>,1,3303,0,-1\n"
        "send AT+MIPLOBSERVERSP=0,${obs},1\nexpect OK\n"
    )
    result = await run_scenario(script, port)
    assert result.ok, result.failure
    assert port.sent == ["AT+MIPLOPEN=0,3000", "AT+MIPLOBSERVERSP=0,4242,1"]
    assert result.variables["obs"] == "4242"
    assert result.exchange[0] == (">", "AT+MIPLOPEN=0,3000")


async def test_expect_skips_unrelated_lines_but_never_reads_backwards() -> None:
    port = FakePort({"AT": ["+URC: 1", "OK"], "AT+X": ["OK"]})
    script = parse_script("@timeout 0.2\nsend AT\nexpect OK\nexpect \\+URC: 1\n")
    result = await run_scenario(script, port)
    assert not result.ok
    assert result.failure is not None and result.failure.line == 4


async def test_timeout_failure_names_file_line_pattern_and_what_came_instead() -> None:
    port = FakePort({"AT+MIPLOPEN=0,3000": ["OK", "+MIPLEVENT: 0,7"]})
    script = parse_script(
        "send AT+MIPLOPEN=0,3000\nexpect OK\nexpect within 0.1 +MIPLEVENT: 0,6\nsend AT\n", "login.txt"
    )
    result = await run_scenario(script, port)
    failure = result.failure
    assert failure is not None
    assert (failure.script, failure.line, failure.step) == ("login.txt", 3, "expect +MIPLEVENT: 0,6")
    assert failure.received == ("+MIPLEVENT: 0,7",)
    text = str(failure)
    assert text.startswith("login.txt:3: expect +MIPLEVENT: 0,6: no line matched")
    assert "within 0.1 s" in text and "    +MIPLEVENT: 0,7" in text
    assert port.sent == ["AT+MIPLOPEN=0,3000"], "the run stops at the first failure"
    try:
        result.raise_for_failure()
    except ScenarioFailed as exc:
        assert exc.failure is failure
    else:
        raise AssertionError("raise_for_failure did not raise")


async def test_variables_from_the_caller_override_script_defaults() -> None:
    port = FakePort({'AT+MIPLCREATEEX="10.0.0.1:5683",0': ["+MIPLCREATEEX: 0", "OK"]})
    script = parse_script('@var server a.example:5683\nsend AT+MIPLCREATEEX="${server}",0\nexpect OK\n')
    result = await run_scenario(script, port, variables={"server": "10.0.0.1:5683"})
    assert result.ok, result.failure


async def test_unknown_variable_is_a_failure_not_an_exception() -> None:
    result = await run_scenario(parse_script("send AT+X=${nope}\n", "v.txt"), FakePort({}))
    assert result.failure is not None
    assert str(result.failure) == "v.txt:1: send AT+X=${nope}: unknown variable ${nope}"


async def test_captured_value_is_matched_literally_in_later_patterns() -> None:
    port = FakePort({"AT+A": ["+A: 1.5", "OK"], "AT+B": ["+B: 125", "+B: 1.5", "OK"]})
    script = parse_script("send AT+A\nexpect +A: <v>\nsend AT+B\nexpect +B: ${v}\nexpect OK\n")
    result = await run_scenario(script, port)
    assert result.ok, result.failure
    assert ("<", "+B: 125") in result.exchange


async def test_actions_run_in_the_background_and_await_collects_them() -> None:
    calls: list[Sequence[str]] = []
    port = FakePort({"AT+MIPLREADRSP=0,77,1": ["OK"]})

    async def read(args: Sequence[str]) -> str:
        calls.append(list(args))
        port.queue.put_nowait("+MIPLREAD: 0,77,3303,0,5700")
        await asyncio.sleep(0.05)
        return "done"

    script = parse_script(
        "do read /3303/0/5700\nexpect +MIPLREAD: 0,<mid>,3303,0,5700\nsend AT+MIPLREADRSP=0,${mid},1\n"
        "expect OK\nawait\n"
    )
    result = await run_scenario(script, port, actions={"read": read})
    assert result.ok, result.failure
    assert calls == [["/3303/0/5700"]]


async def test_an_action_that_raises_fails_the_run_at_its_do_line() -> None:
    async def broken(_args: Sequence[str]) -> None:
        raise RuntimeError("platform said 4.04")

    script = parse_script("send AT\nexpect OK\ndo read /1/2\n", "a.txt")
    result = await run_scenario(script, FakePort({"AT": ["OK"]}), actions={"read": broken})
    assert result.failure is not None
    assert str(result.failure) == "a.txt:3: do read /1/2: action failed: RuntimeError: platform said 4.04"


async def test_missing_action_fails_unless_told_to_log_it() -> None:
    script = parse_script("do observe /3303/0\nsend AT\nexpect OK\n")
    failed = await run_scenario(script, FakePort({"AT": ["OK"]}))
    assert failed.failure is not None and "no action 'observe'" in failed.failure.reason
    logged = await run_scenario(script, FakePort({"AT": ["OK"]}), missing_actions="log")
    assert logged.ok, logged.failure


async def test_closed_transport_is_reported() -> None:
    class Closed(FakePort):
        async def read_line(self) -> str:
            raise EOFError("connection closed")

    result = await run_scenario(parse_script("send AT\nexpect OK\n"), Closed({}))
    assert result.failure is not None and "transport closed" in result.failure.reason


def test_line_splitter_cuts_at_cr_or_lf_in_any_chunking() -> None:
    splitter = LineSplitter()
    data = b"AT\r\r\nOK\r\n\r\n+CGSN: 1\r\n"
    lines: list[str] = []
    for i in range(len(data)):
        lines += splitter.feed(data[i : i + 1])
    assert lines == ["AT", "OK", "+CGSN: 1"]


async def test_runner_drives_an_in_process_emulated_module_with_echo() -> None:
    module = EmulatedModule("ML307R", imei=IMEI)
    await module.start()
    transport = ModuleTransport(module)
    try:
        script = parse_script(
            '@timeout 2\nsend AT\nexpect OK\nsend AT+CGSN=1\nexpect \\+CGSN: "?<imei>"?\nexpect OK\n'
            "send AT+MIPLDELETE=0\nexpect \\+CIS ERROR: 653\n"
        )
        result = await run_scenario(script, transport)
        assert result.ok, result.failure
        assert result.variables["imei"].strip('"') == IMEI
        assert ("<", "AT+CGSN=1") in result.exchange, "the echo arrives as a line"
    finally:
        transport.close()
        await module.stop()


async def test_fail_pattern_ends_the_run_at_once_instead_of_waiting_out_the_timeout() -> None:
    port = FakePort({"AT+MIPLOPEN=0,3000": ["OK", "+MIPLEVENT: 0,7"]})
    script = parse_script(
        "@fail +MIPLEVENT: 0,(3|7)\nsend AT+MIPLOPEN=0,3000\nexpect OK\nexpect within 30 +MIPLEVENT: 0,6\n"
    )
    started = asyncio.get_running_loop().time()
    result = await run_scenario(script, port)
    assert asyncio.get_running_loop().time() - started < 1.0
    assert result.failure is not None and result.failure.line == 4
    assert "matches @fail" in result.failure.reason and "'+MIPLEVENT: 0,7'" in result.failure.reason
