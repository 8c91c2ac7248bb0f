"""No Python module over 500 lines unless its docstring says why it must be one file.

Small modules with one job are the rule (ARCHITECTURE.md). A module may grow past the limit only
when its module docstring carries a sentence with the marker "one file because", e.g. "This is one
file because the state machine's transitions must be read together.", so the reason is written where
a newcomer opens the file.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("lwm2m", "transport", "server", "emulator", "testbed", "bench", "tests")
MAX_LINES = 500
MARKER = "one file because"


def _python_modules() -> list[Path]:
    return sorted(
        path
        for package in PACKAGES
        if (ROOT / package).is_dir()
        for path in (ROOT / package).rglob("*.py")
        if ".venv" not in path.parts
    )


def _says_why_it_is_one_file(source: str) -> bool:
    docstring = ast.get_docstring(ast.parse(source)) or ""
    return MARKER in " ".join(docstring.lower().split())


def _oversized(modules: list[Path]) -> list[tuple[Path, int]]:
    offenders = []
    for path in modules:
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        if lines > MAX_LINES and not _says_why_it_is_one_file(source):
            offenders.append((path, lines))
    return offenders


def test_every_module_is_at_most_500_lines_or_says_why_it_is_one_file() -> None:
    offenders = [f"{path.relative_to(ROOT)}: {lines} lines" for path, lines in _oversized(_python_modules())]
    assert not offenders, (
        f"modules over {MAX_LINES} lines without '{MARKER}' in their docstring "
        "(split them by role, or say why they must be one file):\n" + "\n".join(offenders)
    )


def test_the_check_sees_the_packages() -> None:
    modules = _python_modules()
    assert any(path.parts[-2:] == ("lwm2m", "path.py") for path in modules)
    assert any(path.name == "test_module_sizes.py" for path in modules)


def test_the_marker_is_read_from_the_module_docstring_only(tmp_path: Path) -> None:
    body = "x = 1\n" * (MAX_LINES + 1)
    explained = tmp_path / "explained.py"
    explained.write_text('"""A table.\n\nThis is one file because\nthe table is read as a whole."""\n' + body)
    comment_only = tmp_path / "comment_only.py"
    comment_only.write_text("# This is one file because it is.\n" + body)
    short = tmp_path / "short.py"
    short.write_text("x = 1\n")
    assert _oversized([explained, comment_only, short]) == [(comment_only, MAX_LINES + 2)]
