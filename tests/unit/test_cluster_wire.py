"""server.cluster.wire: a forwarded request's error comes back as the error a local request
raises, and events cross nodes with what their streams show."""

from __future__ import annotations

import pytest

from server.cluster import wire
from server.events import Event
from server.services.errors import (
    BadArgument,
    DeviceSleeping,
    DeviceTimeout,
    DeviceUnreachable,
    RequestFailed,
    ServerError,
    UnknownEndpoint,
)


@pytest.mark.parametrize(
    "error",
    [
        UnknownEndpoint("ep-1"),
        DeviceSleeping("ep-2"),
        DeviceTimeout("no answer within 5 s"),
        DeviceUnreachable("network said no"),
        RequestFailed(132, "not found here"),
        BadArgument("bad path"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_cross_nodes_as_the_same_error(error: ServerError) -> None:
    back = wire.error_from_wire(wire.loads(wire.dumps(wire.error_to_wire(error))))
    assert type(back) is type(error)
    assert str(back) == str(error)


def test_a_device_error_keeps_its_coap_code() -> None:
    back = wire.error_from_wire(wire.error_to_wire(RequestFailed(160)))
    assert isinstance(back, RequestFailed) and back.code == 160 and back.dotted == "5.00"


def test_an_unexpected_failure_on_the_owner_is_unreachable_not_a_crash() -> None:
    back = wire.error_from_wire(wire.error_to_wire(RuntimeError("disk full")))
    assert isinstance(back, DeviceUnreachable) and "disk full" in str(back)


def test_events_cross_nodes_with_their_producer() -> None:
    event = Event("notification", "ep-1", {"id": 3, "values": [{"path": "/3/0/0", "value": 1}]}, 12.5, seq=7)
    back = wire.event_from_wire(wire.event_to_wire(event), "A")
    assert (back.kind, back.endpoint, back.time) == ("notification", "ep-1", 12.5)
    assert back.data == {**event.data, "node": "A"}
