"""Connection events of the LwM2M client, for whoever shows them (the AT module maps them to
`+MIPLEVENT` URCs, manual §4). The client reports each event through one callback,
`on_event(ClientEvent)`; which request or observation an event belongs to is known to the caller
through the call it made (`register()`, `notify()`) or the handler call it received (`observe()`).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum


class ClientEvent(Enum):
    REGISTERED = "registered"
    REGISTER_FAILED = "register_failed"
    UPDATED = "updated"
    UPDATE_FAILED = "update_failed"
    DEREGISTERED = "deregistered"
    DEREGISTER_FAILED = "deregister_failed"
    BOOTSTRAP_REQUESTED = "bootstrap_requested"
    BOOTSTRAP_FAILED = "bootstrap_failed"
    BOOTSTRAP_FINISHED = "bootstrap_finished"
    NOTIFY_ACKED = "notify_acked"
    NOTIFY_FAILED = "notify_failed"
    OBSERVED = "observed"
    OBSERVE_CANCELLED = "observe_cancelled"


EventCallback = Callable[[ClientEvent], None]
