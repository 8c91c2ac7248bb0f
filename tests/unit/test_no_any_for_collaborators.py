"""No `Any` for the collaborators: a `server`, `lwm2m_server`, `transport` or `device` parameter has a type.

These parameters are the seams between packages; typed, mypy checks every call across them, and a
reader sees which side of which boundary a function talks to. `Any` (also `Any | None` or
`Optional[Any]`) turns both off. The check reads the source (AST), so it holds for code mypy
cannot see through either.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lwm2m", "transport", "server", "emulator", "testbed")
COLLABORATORS = frozenset({"server", "lwm2m_server", "transport", "device"})


def _is_any(annotation: ast.expr | None) -> bool:
    """True for `Any`, `typing.Any`, `"Any"`, and unions or Optionals whose only type is Any."""
    if annotation is None:
        return False
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            return _is_any(ast.parse(annotation.value, mode="eval").body)
        except SyntaxError:
            return False
    if isinstance(annotation, ast.Name):
        return annotation.id == "Any"
    if isinstance(annotation, ast.Attribute):
        return annotation.attr == "Any"
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _is_any(annotation.left) or _is_any(annotation.right)
    if isinstance(annotation, ast.Subscript):
        outer = annotation.value
        name = outer.id if isinstance(outer, ast.Name) else getattr(outer, "attr", "")
        if name in ("Optional", "Union"):
            inner = annotation.slice
            members = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return any(_is_any(member) for member in members)
    return False


def _offenders_in(source: str, filename: str) -> list[str]:
    offenders = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = node.args
        every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        every += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
        for arg in every:
            if arg.arg in COLLABORATORS and _is_any(arg.annotation):
                offenders.append(f"{filename}:{arg.lineno} {node.name}({arg.arg}: Any)")
    return offenders


def _python_modules() -> list[Path]:
    return sorted(
        path for package in PACKAGES if (ROOT / package).is_dir() for path in (ROOT / package).rglob("*.py")
    )


def test_no_collaborator_parameter_is_annotated_any() -> None:
    offenders = [
        offender
        for path in _python_modules()
        for offender in _offenders_in(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not offenders, "collaborator parameters typed Any (give them their type or a Protocol):\n" + (
        "\n".join(offenders)
    )


def test_the_check_finds_every_spelling_of_any() -> None:
    source = """
import typing
from typing import Any, Optional

def plain(server: Any) -> None: ...
async def dotted(*, transport: typing.Any) -> None: ...
def optional(device: Optional[Any] = None) -> None: ...
def union(lwm2m_server: "Any | None" = None) -> None: ...
class Holder:
    def method(self, server: Any | None) -> None: ...
def typed(server: "Lwm2mServer", device: Device, other: Any) -> None: ...
def unannotated(server, transport=None) -> None: ...
"""
    found = _offenders_in(source, "example.py")
    assert [line.split(" ", 1)[1] for line in found] == [
        "plain(server: Any)",
        "dotted(transport: Any)",
        "optional(device: Any)",
        "union(lwm2m_server: Any)",
        "method(server: Any)",
    ]
