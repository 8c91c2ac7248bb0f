"""`+MIPLEVENT` numbers (manual §3.20) and which client event raises which.

The manual lists 2, 3, 6, 7, 11, 15, 26, 31, 32, 33; platforms.md ("module side") adds the CIS
SDK's other numbers. A model reports only the numbers in its capability table
(`ModelCapabilities.events`); an event it does not report falls back to the manual's number when
one fits (e.g. a register timeout is `+MIPLEVENT: 0,7` on the OneMO models: "平台拒绝登录或登录超时
的情景下会上报+MIPLEVENT: 0,7"), or is not shown at all.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final


class Event(IntEnum):
    BOOTSTRAP_START = 1
    BOOTSTRAP_SUCCESS = 2
    BOOTSTRAP_FAILED = 3
    CONNECT_SUCCESS = 4
    CONNECT_FAILED = 5
    REG_SUCCESS = 6
    REG_FAILED = 7
    REG_TIMEOUT = 8
    LIFETIME_TIMEOUT = 9
    STATUS_HALT = 10
    UPDATE_SUCCESS = 11
    UPDATE_FAILED = 12
    UPDATE_TIMEOUT = 13
    UPDATE_NEED = 14
    UNREG_DONE = 15
    UNREG_FAILED = 16
    RESPONSE_FAILED = 20
    RESPONSE_SUCCESS = 21
    NOTIFY_FAILED = 25
    NOTIFY_SUCCESS = 26
    DEVICE_DELETED = 31
    DTLS_IP_AGED = 32
    PACKET_TOO_LONG = 33


MANUAL_EVENTS: Final = frozenset(
    {
        Event.BOOTSTRAP_SUCCESS,
        Event.BOOTSTRAP_FAILED,
        Event.REG_SUCCESS,
        Event.REG_FAILED,
        Event.UPDATE_SUCCESS,
        Event.UNREG_DONE,
        Event.NOTIFY_SUCCESS,
        Event.DEVICE_DELETED,
        Event.DTLS_IP_AGED,
        Event.PACKET_TOO_LONG,
    }
)

ALL_EVENTS: Final = frozenset(Event)

# An event the model does not report -> the manual event shown instead (None: nothing shown).
FALLBACK: Final[dict[Event, Event | None]] = {
    Event.REG_TIMEOUT: Event.REG_FAILED,
    Event.CONNECT_FAILED: None,
}


def shown_as(event: Event, reported: frozenset[Event]) -> Event | None:
    """The event number a model prints for `event`, or None."""
    if event in reported:
        return event
    return FALLBACK.get(event)
