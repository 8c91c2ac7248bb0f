"""`testbed firmware pack` and the emulator's `--fota-fault` flag, in-process with CliRunner."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lwm2m.firmware_package import verify
from testbed.cli import app

runner = CliRunner()


def test_firmware_pack_writes_a_package_the_modules_accept(tmp_path: Path) -> None:
    image = tmp_path / "app.bin"
    image.write_bytes(b"\x7fELF new firmware")
    result = runner.invoke(app, ["firmware", "pack", "--model", "ml307r", "--version", "1.2.0", str(image)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "app.bin-ML307R-1.2.0.tbfw"
    header = verify(package.read_bytes())
    assert (header.model, header.version, header.length) == ("ML307R", "1.2.0", len(image.read_bytes()))
    assert "sha256" in result.output and str(package) in result.output


def test_firmware_pack_says_what_is_wrong_in_a_line_or_two(tmp_path: Path) -> None:
    image = tmp_path / "app.bin"
    image.write_bytes(b"x")
    unknown = runner.invoke(app, ["firmware", "pack", "--model", "XX1", "--version", "1", str(image)])
    assert unknown.exit_code == 2 and "unknown model" in unknown.output and "Traceback" not in unknown.output
    missing = runner.invoke(
        app, ["firmware", "pack", "--model", "MN316", "--version", "1", str(tmp_path / "no")]
    )
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_the_emulator_refuses_an_unknown_fota_fault() -> None:
    result = runner.invoke(app, ["emulator", "--tcp", ":0", "--fota-fault", "cut=50,explode"])
    assert result.exit_code == 2
    assert "unknown FOTA fault 'explode'" in " ".join(result.output.split())
