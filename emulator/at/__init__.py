"""The AT command engine of an emulated module: syntax, parameters, result codes, dispatch.

Pure: no sockets, no clocks. `AtEngine` turns bytes into command lines, looks them up in a
`CommandTable` and writes response lines to a sink; the module (`emulator.module`) supplies the
handlers.
"""

from emulator.at.engine import AtEngine
from emulator.at.framing import ByteFramer, frame_line, on_bytes
from emulator.at.params import HexParam, IntParam, Signature, StrParam
from emulator.at.results import CisError, CmeError, PlainError, Reply, Result, render_result
from emulator.at.syntax import Arg, CommandLine, Form, SyntaxFault, parse_line
from emulator.at.table import CommandSpec, CommandTable, Invocation

__all__ = [
    "Arg",
    "AtEngine",
    "ByteFramer",
    "CisError",
    "CmeError",
    "CommandLine",
    "CommandSpec",
    "CommandTable",
    "Form",
    "HexParam",
    "IntParam",
    "Invocation",
    "PlainError",
    "Reply",
    "Result",
    "Signature",
    "StrParam",
    "SyntaxFault",
    "frame_line",
    "on_bytes",
    "parse_line",
    "render_result",
]
