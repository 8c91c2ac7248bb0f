"""The scenarios shipped with the package (`emulator/scenarios/flows/*.txt`: the seven flows of the
manual's chapter 5 and a custom-platform flow) and loading scenario files from disk."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from emulator.scenarios.script import Script, parse_script

_PACKAGE = "emulator.scenarios"


def flow_names() -> list[str]:
    """Names of the shipped flows, e.g. "5.1-onenet" (the file name without `.txt`)."""
    folder = resources.files(_PACKAGE) / "flows"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_flow(name: str) -> Script:
    """A shipped flow by name; raises KeyError for an unknown name."""
    if name not in flow_names():
        raise KeyError(name)
    text = (resources.files(_PACKAGE) / "flows" / f"{name}.txt").read_text(encoding="utf-8")
    return parse_script(text, f"{name}.txt")


def load_script(path: str | Path) -> Script:
    """A scenario file from disk, or a shipped flow when `path` names one."""
    file = Path(path)
    if not file.exists() and str(path) in flow_names():
        return load_flow(str(path))
    return parse_script(file.read_text(encoding="utf-8"), file.name)
