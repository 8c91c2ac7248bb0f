"""Event kinds are one `StrEnum` (server.event_kinds): every event the server publishes has a kind
of it, and the console's copy (web/static/js/event_kinds.js) is the same list."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from server.event_kinds import CONSOLE_MODULE, EventKind, console_module
from server.events import EventBus

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server"
WEB = ROOT / "web"


def _publish_calls() -> list[tuple[Path, ast.Call]]:
    """Every `<...>bus.publish(...)` call under server/."""
    calls = []
    for path in sorted(SERVER.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "publish"
                and ast.unparse(node.func.value).endswith("bus")
            ):
                calls.append((path, node))
    return calls


def _is_kind(arg: ast.expr) -> bool:
    if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id == "EventKind":
        return arg.attr in EventKind.__members__
    return isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "EventKind"


def test_every_publish_call_names_an_event_kind() -> None:
    calls = _publish_calls()
    assert len(calls) >= 35
    wrong = [
        f"{path.relative_to(ROOT)}:{call.lineno}: {ast.unparse(call.args[0]) if call.args else '()'}"
        for path, call in calls
        if not call.args or not _is_kind(call.args[0])
    ]
    assert wrong == []


def test_registration_removal_reasons_are_event_kinds() -> None:
    """`RegistrationService.remove(reg, reason)` publishes `EventKind(f"registration.{reason}")`."""
    source = (SERVER / "services" / "registration.py").read_text(encoding="utf-8")
    reasons = re.findall(r"\.remove\(\w+, \"(\w+)\"\)", source)
    assert sorted(reasons) == ["deregistered", "expired"]
    for reason in reasons:
        assert EventKind(f"registration.{reason}")


def test_published_events_keep_their_wire_name_as_a_plain_string() -> None:
    bus = EventBus()
    with bus.subscribe(kinds=("registration.",)) as subscription:
        event = bus.publish(EventKind.REGISTRATION_REGISTERED, "ep", lifetime=60)
        assert type(event.kind) is str
        assert event.kind == "registration.registered" == EventKind.REGISTRATION_REGISTERED
        assert event.as_dict()["kind"] == "registration.registered"
        assert subscription._queue.qsize() == 1


def test_kind_names_are_the_wire_names() -> None:
    for kind in EventKind:
        assert kind.name == re.sub(r"[.]", "_", kind.value).upper()


def test_console_module_is_generated_from_the_enum() -> None:
    assert CONSOLE_MODULE == WEB / "static" / "js" / "event_kinds.js"
    assert CONSOLE_MODULE.read_text(encoding="utf-8") == console_module(), (
        "web/static/js/event_kinds.js is stale: run `python -m server.event_kinds`"
    )


def test_console_list_equals_the_enum() -> None:
    text = CONSOLE_MODULE.read_text(encoding="utf-8")
    pairs = dict(re.findall(r'^  ([A-Z_]+): "([a-z_.]+)",$', text, re.MULTILINE))
    assert pairs == {kind.name: kind.value for kind in EventKind}


@pytest.mark.parametrize("path", sorted(WEB.rglob("*.js")), ids=lambda p: str(p.relative_to(WEB)))
def test_console_pages_name_kinds_through_the_enum(path: Path) -> None:
    """No console script spells an event kind as a string: it uses `EventKind.X`."""
    if path == CONSOLE_MODULE:
        return
    values = {kind.value for kind in EventKind}
    spelled = [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("//")
        and any(m.group(2) in values for m in re.finditer(r"([\"'`])([a-z_.]+)\1", line))
    ]
    assert spelled == []
