"""The package boundaries and the types hold: `make lint`'s import-linter and mypy runs, inside `make test`.

The contracts live in pyproject.toml (`[tool.importlinter]`, `[tool.mypy]`); ARCHITECTURE.md draws
the layers they keep. These tests run the real tools from the virtual environment that runs pytest,
in the repository root, exactly as `make lint` does, and show the tools' own report on failure.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.support import missing

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run_tool(name: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / name
    if not tool.exists():
        missing(f"{name} is not installed in {BIN} (pip install -e '.[dev]')")
    return subprocess.run([str(tool)], cwd=ROOT, capture_output=True, text=True, timeout=540, check=False)


@pytest.mark.timeout(600)
def test_import_contracts_are_kept() -> None:
    result = _run_tool("lint-imports")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mypy_finds_no_errors_in_the_packages() -> None:
    result = _run_tool("mypy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_architecture_md_names_every_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    ids = [contract["id"] for contract in config["tool"]["importlinter"]["contracts"]]
    described = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert ids and [i for i in ids if f"`{i}`" not in described] == []
