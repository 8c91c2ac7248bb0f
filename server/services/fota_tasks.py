"""The records of a firmware campaign (`server.services.fota`): a task, each device's progress,
the statuses and phase timeouts, and the errors of the campaign."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from lwm2m.firmware_update import meaning
from server.services.errors import UnknownItem

METHODS: Final = ("pull-coap", "pull-http", "push")
TERMINAL: Final = frozenset({"succeeded", "failed", "cancelled"})
STATUSES: Final = (
    "pending",
    "version-check",
    "downloading",
    "downloaded",
    "updating",
    "succeeded",
    "failed",
    "cancelled",
)
# Seconds per phase. Huawei IoTDA: 24 h for the device to come online, 3 min for the version
# query, 60 min for the download; the update's own wait is ours. `poll` is how often the object
# is read again when no notification came.
DEFAULT_TIMEOUTS: Final[dict[str, float]] = {
    "online": 86400.0,
    "version_check": 180.0,
    "download": 3600.0,
    "update": 300.0,
    "poll": 5.0,
}


class UnknownTask(UnknownItem):
    pass


class DeviceFailed(Exception):
    def __init__(self, reason: str, update_result: int | None = None) -> None:
        self.reason = reason
        self.update_result = update_result
        super().__init__(reason)


@dataclass(slots=True)
class DeviceProgress:
    endpoint: str
    status: str = "pending"
    bytes: int = 0
    size: int = 0
    attempts: int = 0
    update_result: int | None = None
    reason: str | None = None
    from_version: str | None = None

    @property
    def percent(self) -> float:
        if self.status == "succeeded":
            return 100.0
        return round(100.0 * self.bytes / self.size, 1) if self.size else 0.0

    def details(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "size": self.size,
            "attempts": self.attempts,
            "update_result": self.update_result,
            "reason": self.reason,
            "from_version": self.from_version,
        }

    def as_dict(self) -> dict[str, Any]:
        shown = {"endpoint": self.endpoint, "status": self.status, "percent": self.percent, **self.details()}
        if self.update_result is not None:
            shown["update_result_meaning"] = meaning(self.update_result)
        return shown


@dataclass(slots=True)
class FotaTask:
    id: int
    firmware_id: int
    product_id: str | None
    method: str
    status: str
    options: dict[str, Any]
    created_at: float
    finished_at: float | None = None
    devices: dict[str, DeviceProgress] = field(default_factory=dict)

    @property
    def timeouts(self) -> dict[str, float]:
        return {**DEFAULT_TIMEOUTS, **self.options.get("timeouts", {})}

    def totals(self) -> dict[str, Any]:
        counts: dict[str, float] = {status: 0 for status in STATUSES}
        for device in self.devices.values():
            counts[device.status] += 1
        # A device's share: its download's percent until it ends, then 100.
        done = sum(100.0 if d.status in TERMINAL else d.percent for d in self.devices.values())
        counts["total"] = len(self.devices)
        counts["percent"] = round(done / len(self.devices), 1) if self.devices else 100.0
        return counts

    def as_dict(self, *, with_devices: bool = True) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "id": self.id,
            "firmware_id": self.firmware_id,
            "product_id": self.product_id,
            "method": self.method,
            "status": self.status,
            "max_concurrent": self.options.get("max_concurrent"),
            "retries": self.options.get("retries"),
            "timeouts": self.timeouts,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "totals": self.totals(),
        }
        if with_devices:
            shown["devices"] = [d.as_dict() for d in self.devices.values()]
        return shown
