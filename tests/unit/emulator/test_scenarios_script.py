"""The scenario format (emulator.scenarios.script): parsing, patterns, variables, shipped flows."""

from __future__ import annotations

import re

import pytest

from emulator.scenarios import flow_names, load_flow, load_script, parse_script
from emulator.scenarios.script import (
    Await,
    Do,
    Expect,
    ScriptError,
    Send,
    SetVar,
    Wait,
    expand_pattern,
    substitute,
)

EXAMPLE = """\
# a comment
@title  Demo flow
@needs  a listener
@needs  a carrier
@timeout 3
@var server 127.0.0.1:5683

send AT+MIPLCREATEEX="${server}",0
expect +MIPLCREATEEX: 0
expect within 30 \\+MIPLEVENT: 0,6
do observe /3303/0/5700
await
wait 0.25
set ackid 147
"""


def test_parse_reads_every_step_kind_with_its_line_number() -> None:
    script = parse_script(EXAMPLE, "demo.txt")
    assert script.steps == (
        Send(8, 'AT+MIPLCREATEEX="${server}",0'),
        Expect(9, "+MIPLCREATEEX: 0", None),
        Expect(10, "\\+MIPLEVENT: 0,6", 30.0),
        Do(11, "observe", ("/3303/0/5700",)),
        Await(12),
        Wait(13, 0.25),
        SetVar(14, "ackid", "147"),
    )
    assert script.timeout == 3.0
    assert script.variables == {"server": "127.0.0.1:5683"}
    assert script.title == "Demo flow"
    assert script.meta["needs"] == "a listener\na carrier"


def test_leading_plus_is_literal_so_manual_lines_paste_as_they_are() -> None:
    regex = re.compile(expand_pattern("+MIPLEVENT: 0,26,147"))
    assert regex.fullmatch("+MIPLEVENT: 0,26,147")
    assert not regex.fullmatch("MIPLEVENT: 0,26,147")


def test_angle_placeholder_captures_one_field_and_named_groups_still_work() -> None:
    regex = re.compile(expand_pattern("+MIPLOBSERVE: 0,<mid>,1,3303,0,(?P<res>-?\\d+)"))
    match = regex.fullmatch("+MIPLOBSERVE: 0,18172,1,3303,0,5700")
    assert match is not None
    assert match.groupdict() == {"mid": "18172", "res": "5700"}
    assert regex.fullmatch("+MIPLOBSERVE: 0,1,2,1,3303,0,5700") is None


def test_substitute_escapes_values_only_for_patterns() -> None:
    values = {"host": "1.2.3.4:5683"}
    assert substitute('"${host}"', values) == '"1.2.3.4:5683"'
    assert substitute("${host}", values, escape=True) == re.escape("1.2.3.4:5683")
    with pytest.raises(KeyError):
        substitute("${missing}", values)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jump somewhere", "unknown step 'jump'"),
        ("expect", "expect needs a pattern"),
        ("expect within soon OK", "is not a number"),
        ("expect (unclosed", "bad pattern"),
        ("wait -1", "negative time"),
        ("do", "do needs an action name"),
        ("await now", "await takes no arguments"),
        ("set 9lives x", "bad variable name"),
        ("@var 1x y", "bad variable name"),
        ("@timeout never", "is not a number"),
    ],
)
def test_malformed_lines_are_refused_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ScriptError, match=rf"^bad\.txt:2: .*{re.escape(message)}"):
        parse_script(f"# header\n{text}\n", "bad.txt")


def test_the_seven_manual_flows_and_the_custom_flow_ship_and_parse() -> None:
    names = flow_names()
    assert names == [
        "5.1-onenet",
        "5.2-onenet-dtls",
        "5.3-ctwing",
        "5.4-ctwing-dtls",
        "5.5-yanfei",
        "5.6-huawei",
        "5.7-huawei-dtls",
        "custom",
    ]
    for name in names:
        script = load_flow(name)
        assert script.meta["needs"], name
        assert script.meta["model"], name
        assert "manual" in script.title or name == "custom"
        assert any(isinstance(s, Send) and s.text.startswith("AT+MIPLCREATEEX") for s in script.steps)
        assert isinstance(script.steps[-1], Expect) and script.steps[-1].pattern == "OK"


def test_flows_marked_not_for_ml30x_choose_another_model() -> None:
    for name in ("5.4-ctwing-dtls", "5.5-yanfei", "5.6-huawei", "5.7-huawei-dtls"):
        assert load_flow(name).meta["model"] == "MN316"


def test_load_script_reads_a_file_or_a_shipped_flow_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    file = tmp_path / "mine.txt"
    file.write_text("send AT\nexpect OK\n", encoding="utf-8")
    assert load_script(file).steps == (Send(1, "AT"), Expect(2, "OK"))
    assert load_script("custom").name == "custom.txt"
    with pytest.raises(KeyError):
        load_flow("no-such-flow")
