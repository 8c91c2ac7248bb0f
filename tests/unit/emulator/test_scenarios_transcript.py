"""The timestamped AT transcript (emulator.transcript) and its wiring into EmulatedModule."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

from emulator.runner import EmulatedModule
from emulator.transcript import TranscriptWriter

STAMP = datetime(2024, 5, 1, 8, 30, 12, 345678, tzinfo=UTC)


def test_lines_in_and_out_are_written_once_complete_with_direction_and_time() -> None:
    stream = io.StringIO()
    stream.close = lambda: None  # type: ignore[method-assign]  # keep the text readable
    writer = TranscriptWriter(stream, clock=lambda: STAMP)
    writer.to_module(b"AT+MIPL")
    assert stream.getvalue() == ""
    writer.to_module(b"OPEN=0,3000\r")
    writer.from_module(b"\r\nOK\r\n\r\n+MIPLEVENT: 0,6\r\n")
    writer.to_module(b"AT\x08\xff")
    writer.close()
    assert stream.getvalue().splitlines() == [
        "2024-05-01T08:30:12.345678+00:00 > AT+MIPLOPEN=0,3000",
        "2024-05-01T08:30:12.345678+00:00 < OK",
        "2024-05-01T08:30:12.345678+00:00 < +MIPLEVENT: 0,6",
        "2024-05-01T08:30:12.345678+00:00 > AT\\x08\\xff",
    ]


async def test_emulated_module_writes_its_transcript_file(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "module.log"
    module = EmulatedModule("ML307R", transcript=path)
    await module.start()
    module.feed(b"ATE0\r")
    await module.expect(r"OK\r\n", timeout=2.0)
    module.feed(b"AT+CGMI\r")
    await module.expect(r"OK\r\n", timeout=2.0)
    await module.stop()
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = [re.sub(r"^\S+ ", "", line) for line in lines]
    assert entries[:3] == ["> ATE0", "< ATE0", "< OK"]
    assert entries[3] == "> AT+CGMI"
    assert entries[-1] == "< OK" and "< AT+CGMI" not in entries, "echo is off after ATE0"
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00 [<>] ", line) for line in lines)
