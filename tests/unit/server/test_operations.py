"""Typed downlink operations and their JSON-safe form (server.services.operations)."""

from __future__ import annotations

import pytest

from lwm2m.path import Path
from server.services.errors import BadArgument
from server.services.operations import (
    Create,
    Delete,
    Discover,
    Execute,
    Operation,
    Read,
    ReadComposite,
    Write,
    WriteAttributes,
    WriteComposite,
    operation_from_dict,
)

ENTRY = {"path": "/3/0/13", "type": "time", "value": 1700000000}
OPERATIONS: list[Operation] = [
    Read(Path.parse("/3/0")),
    Read(Path.parse("/3/0/0"), 0),
    Discover(Path.parse("/3")),
    Write(Path.parse("/3/0/13"), (ENTRY,)),
    Write(Path.parse("/3/0/13"), (ENTRY,), replace=False, content_format=112),
    WriteAttributes(Path.parse("/3303/0/5700"), (("pmin", 10), ("gt", None))),
    Execute(Path.parse("/3/0/4")),
    Execute(Path.parse("/5/0/2"), "0='x'"),
    Create(Path.parse("/3303"), (ENTRY,), 1, 11542),
    Create(Path.parse("/3303"), (ENTRY,)),
    Delete(Path.parse("/3303/1")),
    ReadComposite((Path.parse("/3/0/0"), Path.parse("/3303/0"))),
    WriteComposite((ENTRY,), 112),
]


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.kind)
def test_an_operation_survives_its_json_safe_form(op: Operation) -> None:
    data = op.as_dict()
    assert operation_from_dict(data["kind"], data["params"]) == op


def test_the_json_safe_form_is_the_one_queue_mode_always_stored() -> None:
    assert Read(Path.parse("/3/0/0")).as_dict() == {"kind": "read", "params": {"path": "/3/0/0"}}
    assert Write(Path.parse("/1/0/1"), (ENTRY,)).as_dict() == {
        "kind": "write",
        "params": {"path": "/1/0/1", "values": [ENTRY], "replace": True},
    }
    assert ReadComposite((Path.parse("/3/0/0"),), 112).as_dict() == {
        "kind": "read_composite",
        "params": {"paths": ["/3/0/0"], "content_format": 112},
    }


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("reboot", {"path": "/3/0/4"}),
        ("read", {"path": "/not/a/path"}),
        ("write", {"path": "/3/0/13"}),
        ("read_composite", {"paths": "/3/0/0"}),
        ("write_attributes", {"path": "/3/0", "attributes": [1]}),
        ("create", {"path": "/3303", "values": [], "instance_id": "x"}),
    ],
)
def test_a_bad_stored_operation_is_a_bad_argument(kind: str, params: dict[str, object]) -> None:
    with pytest.raises(BadArgument):
        operation_from_dict(kind, params)
