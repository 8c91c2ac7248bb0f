"""Send/expect scenarios for an emulated (or real) module: the script format (`script`), the
runner and its transports (`runner`), the shipped flows of manual chapter 5 (`library`)."""

from emulator.scenarios.library import flow_names, load_flow, load_script
from emulator.scenarios.runner import (
    Action,
    Failure,
    LineTransport,
    ModuleTransport,
    ScenarioFailed,
    ScenarioResult,
    StreamTransport,
    run_scenario,
)
from emulator.scenarios.script import Script, ScriptError, parse_script

__all__ = [
    "Action",
    "Failure",
    "LineTransport",
    "ModuleTransport",
    "ScenarioFailed",
    "ScenarioResult",
    "Script",
    "ScriptError",
    "StreamTransport",
    "flow_names",
    "load_flow",
    "load_script",
    "parse_script",
    "run_scenario",
]
