"""The AT engine alone (manual chapter 2): syntax, framing, echo, CMEE, parameter validation."""

from __future__ import annotations

from emulator.at import (
    Arg,
    AtEngine,
    ByteFramer,
    CommandLine,
    CommandSpec,
    CommandTable,
    Form,
    HexParam,
    IntParam,
    Reply,
    StrParam,
    SyntaxFault,
    frame_line,
    on_bytes,
    parse_line,
)
from emulator.at.params import one_of, sig
from emulator.at.results import CisError


def make_engine(**kwargs: object) -> tuple[AtEngine, list[str]]:
    lines: list[str] = []
    table = CommandTable(
        [
            CommandSpec(
                "+TEST",
                set=lambda inv: Reply([f"+TEST: {inv.values}"]),
                signature=sig(IntParam("a", 0, 10), StrParam("b", 8), HexParam("c"), required=1),
                read=lambda _inv: Reply(["+TEST: 1"]),
            ),
            CommandSpec("+FAIL", execute=lambda _inv: Reply(result=CisError(651))),
            CommandSpec("+BOOM", execute=lambda _inv: 1 / 0),  # type: ignore[arg-type,return-value]
        ]
    )
    engine = AtEngine(table, lines.append, **kwargs)  # type: ignore[arg-type]
    return engine, lines


def test_parse_forms_of_table_2() -> None:
    assert parse_line("AT+X=?") == CommandLine("+X", Form.TEST, (), "AT+X=?")
    assert parse_line("AT+X?").form is Form.READ  # type: ignore[union-attr]
    assert parse_line("AT+X").form is Form.EXECUTE  # type: ignore[union-attr]
    assert parse_line('at+x=1,,"a,b"') == CommandLine(
        "+X", Form.SET, (Arg("1"), Arg(""), Arg("a,b", quoted=True)), 'at+x=1,,"a,b"'
    )


def test_parse_basic_and_s_register_syntax() -> None:
    assert parse_line("ATE0") == CommandLine("E", Form.SET, (Arg("0"),), "ATE0")
    assert parse_line("ATI") == CommandLine("I", Form.EXECUTE, (), "ATI")
    assert parse_line("ATS3=13") == CommandLine("S3", Form.SET, (Arg("13"),), "ATS3=13")


def test_parse_keeps_spaces_out_of_unquoted_arguments_as_the_manual_examples_write_them() -> None:
    parsed = parse_line('AT+MIPLCREATEEX="h:5684",1,, "1234abcd"')
    assert isinstance(parsed, CommandLine)
    assert parsed.args[3] == Arg("1234abcd", quoted=True)


def test_parse_rejects_unterminated_quotes_and_a_missing_prefix() -> None:
    assert parse_line('AT+X="abc') == SyntaxFault("unterminated quoted string", "+X")
    assert isinstance(parse_line("XT+X"), SyntaxFault)
    assert isinstance(parse_line("At+X"), SyntaxFault)  # only "AT" or "at" (manual §2.1)


def test_responses_are_framed_with_crlf_on_both_sides() -> None:
    assert frame_line("OK") == b"\r\nOK\r\n"
    out: list[bytes] = []
    framer = ByteFramer(out.append)
    framer.on_line("+CSQ: 25,99")
    assert out == [b"\r\n+CSQ: 25,99\r\n"]


def test_echo_is_on_by_default_and_ate0_turns_it_off() -> None:
    engine, lines = make_engine()
    engine.feed(b"AT\r")
    assert lines == ["AT", "OK"]
    engine.feed(b"ATE0\r")
    engine.feed(b"AT\r")
    assert lines[-3:] == ["ATE0", "OK", "OK"]


def test_raw_echo_goes_to_the_echo_sink_as_received() -> None:
    echoed: list[bytes] = []
    engine, lines = make_engine(echo_sink=echoed.append)
    engine.feed(b"A")
    engine.feed(b"T\r\n")
    assert echoed == [b"A", b"T\r\n"]
    assert lines == ["OK"]


def test_lines_end_at_cr_lf_or_crlf_in_any_chunking() -> None:
    engine, lines = make_engine(echo=False)
    for byte in b"AT+TEST?\r\nAT+TEST?\nAT\r":
        engine.feed(bytes([byte]))
    assert lines == ["+TEST: 1", "OK", "+TEST: 1", "OK", "OK"]


def test_parameter_validation_renders_the_command_error_style() -> None:
    engine, lines = make_engine(echo=False)
    for text in (
        "AT+TEST=11",
        "AT+TEST=x",
        "AT+TEST=",
        'AT+TEST=1,"123456789"',
        "AT+TEST=1,a,GG",
        "AT+TEST=1,2,3,4",
    ):
        engine.execute(text)
    assert lines == ["+CIS ERROR: 601"] * 6
    engine.execute('AT+TEST=1,,"0A"')
    assert lines[-2:] == ["+TEST: [1, None, '0A']", "OK"]


def test_cmee_selects_plain_numeric_or_verbose_errors() -> None:
    engine, lines = make_engine(echo=False)
    engine.execute("AT+FAIL")
    engine.execute("AT+CMEE=0")
    engine.execute("AT+FAIL")
    engine.execute("AT+CMEE=2")
    engine.execute("AT+FAIL")
    engine.execute("AT+CMEE?")
    assert lines == [
        "+CIS ERROR: 651",
        "OK",
        "ERROR",
        "OK",
        "+CIS ERROR: operation not allowed",
        "+CMEE: 2",
        "OK",
    ]


def test_unknown_commands_and_garbage_answer_plain_error() -> None:
    engine, lines = make_engine(echo=False)
    engine.feed(b"AT+NOPE\rhello\rAT+NOPE=?\r")
    assert lines == ["ERROR", "ERROR", "ERROR"]


def test_the_test_form_answers_the_parameter_list_and_ranges_of_the_signature() -> None:
    """Manual §2.1 Table 2: "测试命令 AT+<CMD>=? 返回参数列表及参数值范围"; a command without
    parameters answers OK alone."""
    engine, lines = make_engine(echo=False)
    engine.feed(b"AT+TEST=?\rAT+FAIL=?\r")
    assert lines == ["+TEST: (0-10),<b>,<c>", "OK", "OK"]


def test_a_handler_that_raises_answers_unknown_error_instead_of_raising() -> None:
    engine, lines = make_engine(echo=False)
    engine.feed(b"AT+BOOM\r")
    assert lines == ["+CIS ERROR: 100"]


def test_overlong_lines_answer_error() -> None:
    engine, lines = make_engine(echo=False, max_line=16)
    engine.feed(b"AT+TEST=" + b"1" * 40 + b"\rAT\r")
    assert lines == ["ERROR", "OK"]


def test_urcs_raised_during_a_command_follow_its_final_result_code() -> None:
    lines: list[str] = []
    engine: AtEngine

    def handler(_inv: object) -> Reply:
        engine.urc("+MIPLEVENT: 0,6")
        return Reply()

    engine = AtEngine(CommandTable([CommandSpec("+GO", execute=handler)]), lines.append, echo=False)  # type: ignore[arg-type]
    engine.feed(b"AT+GO\r")
    engine.urc("+LATER")
    assert lines == ["OK", "+MIPLEVENT: 0,6", "+LATER"]


def test_backspace_deletes_the_previous_character() -> None:
    engine, lines = make_engine(echo=False)
    engine.feed(b"AT+TESX\x08T?\r")
    assert lines == ["+TEST: 1", "OK"]


def test_on_bytes_gives_a_line_sink_that_writes_framed_bytes() -> None:
    out: list[bytes] = []
    sink = on_bytes(out.append)
    sink("OK")
    assert out == [b"\r\nOK\r\n"]


def test_parameter_ranges_are_described_as_they_are_validated() -> None:
    flag = one_of("flag", {0, 1, 2, 0x200, 0x400}, allow_hex=True)
    assert flag.describe() == "(0-2,0x200,0x400)"
    assert [flag.convert(Arg(t)) for t in ("2", "0x200", "1024")] == [2, 0x200, 0x400]
    assert isinstance(flag.convert(Arg("3")), str) and isinstance(flag.convert(Arg("0x300")), str)
    assert one_of("platform", {0, 1, 2, 3, 10}).describe() == "(0-3,10)"
    assert IntParam("enable", 0, 1).describe() == "(0,1)"
    assert IntParam("timeout", spans=((0, 0), (60, 120))).describe() == "(0,60-120)"
    item = StrParam("item", choices=("platform",))
    assert item.describe() == '("platform")'
    assert item.check(Arg("PLATFORM", quoted=True)) is None and item.check(Arg("binding")) is not None
    assert sig(IntParam("a", 0, 10), StrParam("b"), HexParam("c")).describe() == "(0-10),<b>,<c>"
