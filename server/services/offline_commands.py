"""OneNET cached ("offline") commands: a read, write or execute stored for a device and delivered
on its next matching uplink (OneNET NB-IoT API, "cached commands").

Rules: a command is due between `valid_time` and `expired_time`; `trigger_msg` is a bit mask of the
uplinks that deliver it (1 Register, 2 Update, 4 Notify); at most 10 commands wait per device; a
command that fails (device error or timeout) waits again for the next trigger until it has been
tried `retry` + 1 times. `send_status`: 1 wait, 2 cancelled, 3 sent, 4 expired, 5 success,
6 failed. Each final outcome (success, failed, expired) is pushed as a type 7 message.

Design choices: triggers come from the registration hooks (Register, Update) and from the event
bus (`notification`); a per-device lock serialises deliveries; the set of devices with waiting
commands is kept in memory so that notifications cost no database query. Expiry is applied
lazily, when the device triggers or its commands are listed.
"""

from __future__ import annotations

import asyncio
import time
import uuid as uuidlib
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from server.domain import Registration
from server.event_kinds import EventKind
from server.events import Event
from server.services.device_management import values_to_json
from server.services.errors import BadArgument, DeviceTimeout, RequestFailed, ServerError
from server.services.ports import ServerApi
from server.services.provisioning import Device
from server.services.write_types import typed_values
from server.store.api_repository import ApiRepository

if TYPE_CHECKING:
    from server.services.push import PushService

WAIT, CANCELLED, SENT, EXPIRED, SUCCESS, FAILED = 1, 2, 3, 4, 5, 6
TRIGGER_REGISTER, TRIGGER_UPDATE, TRIGGER_NOTIFY = 1, 2, 4
MAX_WAITING = 10
COMMAND_TYPES = ("read", "write", "execute")


class TooManyCommands(BadArgument):
    """More than MAX_WAITING commands would wait for one device."""


@dataclass(frozen=True, slots=True)
class OfflineCommand:
    uuid: str
    device_id: int
    imei: str | None
    cmd_type: str
    params: dict[str, Any]
    valid_time: float
    expired_time: float
    retry: int
    attempts: int
    timeout: float
    trigger_msg: int
    send_status: int
    send_time: float | None
    confirm_time: float | None
    confirm_status: int | None
    confirm_body: Any
    created_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _coap_number(code: int) -> int:
    """CoAP code as OneNET shows it (2.05 -> 205)."""
    return (code >> 5) * 100 + (code & 0x1F)


class OfflineCommands:
    def __init__(self, server: ServerApi, push: PushService | None = None) -> None:
        self.server = server
        self.push = push
        self._repo: ApiRepository | None = None
        self._waiting: set[int] = set()
        self._locks: dict[int, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def repo(self) -> ApiRepository:
        if self._repo is None:
            raise RuntimeError("offline commands not started")
        return self._repo

    async def start(self) -> None:
        self._repo = ApiRepository(self.server.store)
        self._waiting = {row["device_id"] for row in await self.repo.commands(status=WAIT)}
        self.server.registrations.on_register(self._on_register)
        self.server.registrations.on_update(self._on_update)
        self.server.bus.add_listener(self._on_event)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the API -------------------------------------------------------------------------------

    async def create(
        self,
        device: Device,
        cmd_type: str,
        params: dict[str, Any],
        *,
        valid_time: float,
        expired_time: float,
        retry: int = 3,
        timeout: float = 25.0,
        trigger_msg: int = 7,
    ) -> OfflineCommand:
        if cmd_type not in COMMAND_TYPES:
            raise BadArgument(f"unknown command type {cmd_type!r}")
        if not 0 <= retry <= 10:
            raise BadArgument("retry must be 0-10")
        if not 1 <= trigger_msg <= 7:
            raise BadArgument("trigger_msg must be 1-7")
        if expired_time <= valid_time or expired_time <= time.time():
            raise BadArgument("expired_time must be later than valid_time and now")
        await self._expire(device.id)
        if len(await self.repo.commands(device_id=device.id, status=WAIT)) >= MAX_WAITING:
            raise TooManyCommands(f"at most {MAX_WAITING} cached commands per device")
        row: dict[str, Any] = {
            "uuid": str(uuidlib.uuid4()),
            "device_id": device.id,
            "imei": device.imei,
            "cmd_type": cmd_type,
            "params": params,
            "valid_time": valid_time,
            "expired_time": expired_time,
            "retry": retry,
            "attempts": 0,
            "timeout": timeout,
            "trigger_msg": trigger_msg,
            "send_status": WAIT,
            "send_time": None,
            "confirm_time": None,
            "confirm_status": None,
            "confirm_body": None,
            "created_at": time.time(),
        }
        await self.repo.insert_command(row)
        self._waiting.add(device.id)
        # Other cluster nodes (server.cluster) learn from it that the device has a command waiting.
        self.server.bus.publish(
            EventKind.OFFLINE_COMMAND_CREATED,
            self._endpoint_of(device.id),
            uuid=row["uuid"],
            device_id=device.id,
        )
        return OfflineCommand(**row)

    def note_waiting(self, device_id: int) -> None:
        """A command for `device_id` was stored through another cluster node."""
        self._waiting.add(device_id)

    async def get(self, device: Device, uuid: str) -> OfflineCommand | None:
        await self._expire(device.id)
        row = await self.repo.command(uuid)
        if row is None or row["device_id"] != device.id:
            return None
        return OfflineCommand(**row)

    async def history(
        self,
        device: Device,
        *,
        start: float | None = None,
        end: float | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> tuple[int, list[OfflineCommand]]:
        await self._expire(device.id)
        every = await self.repo.commands(device_id=device.id, start=start, end=end)
        rows = await self.repo.commands(
            device_id=device.id, start=start, end=end, newest_first=newest_first, limit=limit, offset=offset
        )
        return len(every), [OfflineCommand(**r) for r in rows]

    async def cancel(self, device: Device, uuid: str) -> bool:
        """Cancel one waiting command; False when there is no such waiting command."""
        async with self._lock(device.id):
            row = await self.repo.command(uuid)
            if row is None or row["device_id"] != device.id or row["send_status"] != WAIT:
                return False
            await self.repo.update_command(uuid, {"send_status": CANCELLED})
            return True

    async def cancel_all(self, device: Device) -> int:
        async with self._lock(device.id):
            count = await self.repo.update_commands_of(device.id, WAIT, {"send_status": CANCELLED})
            self._waiting.discard(device.id)
            return count

    async def forget_device(self, device_id: int) -> None:
        self._waiting.discard(device_id)
        await self.repo.delete_commands_of(device_id)

    # --- triggers ------------------------------------------------------------------------------

    async def _on_register(self, reg: Registration, _reason: str) -> None:
        await self.trigger(reg.endpoint, TRIGGER_REGISTER)

    async def _on_update(self, reg: Registration, _reason: str) -> None:
        await self.trigger(reg.endpoint, TRIGGER_UPDATE)

    def _on_event(self, event: Event) -> None:
        if event.kind != EventKind.NOTIFICATION or event.endpoint is None or not self._waiting:
            return
        task = asyncio.get_running_loop().create_task(self.trigger(event.endpoint, TRIGGER_NOTIFY))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock(self, device_id: int) -> asyncio.Lock:
        return self._locks.setdefault(device_id, asyncio.Lock())

    async def trigger(self, endpoint: str, bit: int) -> None:
        """Deliver the due commands of `endpoint` whose trigger mask has `bit`."""
        device = self.server.device_of(endpoint)
        if device is None or device.id not in self._waiting:
            return
        async with self._lock(device.id):
            await self._expire(device.id)
            now = time.time()
            rows = await self.repo.commands(device_id=device.id, status=WAIT)
            if not rows:
                self._waiting.discard(device.id)
                return
            for row in rows:
                if row["trigger_msg"] & bit and row["valid_time"] <= now:
                    await self._deliver(device, endpoint, OfflineCommand(**row))
            if not await self.repo.commands(device_id=device.id, status=WAIT):
                self._waiting.discard(device.id)

    async def _expire(self, device_id: int) -> None:
        now = time.time()
        for row in await self.repo.commands(device_id=device_id, status=WAIT):
            if row["expired_time"] < now:
                await self.repo.update_command(row["uuid"], {"send_status": EXPIRED})
                self._report(OfflineCommand(**{**row, "send_status": EXPIRED}))

    async def _deliver(self, device: Device, endpoint: str, command: OfflineCommand) -> None:
        send_time = time.time()
        await self.repo.update_command(command.uuid, {"send_status": SENT, "send_time": send_time})
        p = command.params
        try:
            body: Any = None
            if command.cmd_type == "read":
                node = await self.server.read(endpoint, p["path"], timeout=command.timeout)
                body = values_to_json(node, Path.parse(p["path"]))
                code = CoapCode.CONTENT
            elif command.cmd_type == "write":
                values = typed_values(p["values"], p.get("types"))
                await self.server.write(
                    endpoint, p["path"], values, replace=p.get("replace", True), timeout=command.timeout
                )
                code = CoapCode.CHANGED
            else:
                await self.server.execute(endpoint, p["path"], p.get("args", ""), timeout=command.timeout)
                code = CoapCode.CHANGED
        except ServerError as exc:
            attempts = command.attempts + 1
            failed = attempts > command.retry
            if isinstance(exc, RequestFailed):
                confirm: int | None = _coap_number(exc.code)
            else:
                confirm = None
            values = {
                "attempts": attempts,
                "send_status": FAILED if failed else WAIT,
                "confirm_time": time.time(),
                "confirm_status": confirm,
                "confirm_body": {"error": "timeout" if isinstance(exc, DeviceTimeout) else str(exc)},
            }
            await self.repo.update_command(command.uuid, values)
            if failed:
                self._report(OfflineCommand(**{**command.as_dict(), **values, "send_time": send_time}))
            return
        values = {
            "attempts": command.attempts + 1,
            "send_status": SUCCESS,
            "confirm_time": time.time(),
            "confirm_status": _coap_number(code),
            "confirm_body": body,
        }
        await self.repo.update_command(command.uuid, values)
        self._report(OfflineCommand(**{**command.as_dict(), **values, "send_time": send_time}))

    def _report(self, command: OfflineCommand) -> None:
        self.server.bus.publish(
            EventKind.OFFLINE_COMMAND_RESULT,
            self._endpoint_of(command.device_id),
            uuid=command.uuid,
            cmd_type=command.cmd_type,
            send_status=command.send_status,
            confirm_status=command.confirm_status,
        )
        if self.push is None:
            return
        device = self.server.provisioning.device(command.device_id)
        self.push.publish(
            {
                "type": 7,
                "cmd_id": command.uuid,
                "imei": command.imei,
                "dev_id": command.device_id,
                "cmd_type": COMMAND_TYPES.index(command.cmd_type) + 1,
                "send_time": int((command.send_time or 0) * 1000),
                "send_status": command.send_status,
                "confirm_time": int((command.confirm_time or 0) * 1000),
                "confirm_status": command.confirm_status,
                "confirm_body": command.confirm_body,
            },
            device,
        )

    def _endpoint_of(self, device_id: int) -> str | None:
        device = self.server.provisioning.device(device_id)
        return None if device is None else self.server.endpoint_of(device)
