"""Firmware update tasks over LwM2M object 5.

The flow per device follows the carrier platforms' LwM2M firmware upgrade (Huawei IoTDA, "OTA
Upgrade for NB-IoT Devices", https://support.huaweicloud.com/intl/en-us/usermanual-iothub/iot_01_0027.html:
wait for the device to be online, query its firmware version first, subscribe to the upgrade
state, deliver the package URI, segmented download with resume, then the update and its result,
each phase with its own timeout) and the object definition (lwm2m/model/builtin/5.xml):

    pending -> version-check   wait until registered (timeout "online"), read /3/0/3
                               (timeout "version_check"); on the target version already: succeeded
            -> downloading     observe /5/0/3 and /5/0/5; write the URI to /5/0/1 (pull-coap,
                               pull-http) or the package to /5/0/0 (push); wait for State 2
                               (timeout "download"). Update Result 4 (connection lost) or the
                               timeout is retried up to `retries` times: the same URI again, so the
                               module resumes where it stopped. Any other result fails the device.
            -> downloaded      execute /5/0/2
            -> updating        wait for the device to register again (timeout "update"); State 2
                               with Update Result 8 fails it; then /3/0/3 must be the target
            -> succeeded | failed (Update Result and its meaning) | cancelled

Progress (bytes, percent) comes from what the CoAP and HTTP sides served to the device
(`on_served`). Queue-mode devices are served through the queued-request mechanism (requests wait
for the device's next Register or Update). Every status change is written to the database before
it is published (`fota.device`, and `fota.task` with the totals); a server that restarts resumes
its running tasks: each unfinished device starts again at its version check, which finds where
the device is (already updated, Downloaded, still Downloading) and carries on from there.
The task and progress records live in `server.services.fota_tasks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

from lwm2m.firmware_update import Resource, State, UpdateResult, meaning
from lwm2m.node import Node, ObjectInstance, SingleResource
from server.event_kinds import EventKind
from server.events import Subscription
from server.services.errors import BadArgument, DeviceSleeping, ServerError
from server.services.firmware_store import FirmwareStore
from server.services.fota_tasks import (
    DEFAULT_TIMEOUTS,
    METHODS,
    TERMINAL,
    DeviceFailed,
    DeviceProgress,
    FotaTask,
    UnknownTask,
)
from server.services.ports import ServerApi
from server.services.requests import Origin
from server.store.fota_repository import FotaRepository

log = logging.getLogger(__name__)

RETRYABLE: Final = frozenset({UpdateResult.CONNECTION_LOST})


def _value(instance: Node, resource_id: int) -> Any:
    if isinstance(instance, ObjectInstance):
        node = instance.resources.get(resource_id)
        return node.value if isinstance(node, SingleResource) else None
    return None


class FotaService:
    def __init__(self, server: ServerApi, firmware: FirmwareStore, repository: FotaRepository) -> None:
        self.server = server
        self.firmware = firmware
        self.repository = repository
        self.tasks: dict[int, FotaTask] = {}
        self._runners: dict[int, asyncio.Task[None]] = {}
        self._device_runs: dict[tuple[int, str], asyncio.Task[None]] = {}
        # Base URL of the HTTP side (`http://host:port`) for pull-http URIs.
        self.http_base = f"http://{server.settings.http_host}:{server.settings.http_port}"
        firmware.in_use = self.in_use

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        rows = await self.repository.tasks()
        devices = await self.repository.devices()
        for row in rows:
            task = FotaTask(
                id=int(row["id"]),
                firmware_id=int(row["firmware_id"]),
                product_id=row["product_id"],
                method=row["method"],
                status=row["status"],
                options=dict(row["options"] or {}),
                created_at=float(row["created_at"]),
                finished_at=row["finished_at"],
            )
            self.tasks[task.id] = task
        for row in devices:
            owner = self.tasks.get(int(row["task_id"]))
            if owner is None:
                continue
            details = dict(row["details"] or {})
            owner.devices[row["endpoint"]] = DeviceProgress(
                endpoint=row["endpoint"],
                status=row["status"],
                bytes=int(details.get("bytes") or 0),
                size=int(details.get("size") or 0),
                attempts=int(details.get("attempts") or 0),
                update_result=details.get("update_result"),
                reason=details.get("reason"),
                from_version=details.get("from_version"),
            )
        for task in self.tasks.values():
            if task.status == "running":
                self._spawn_runner(task)

    async def stop(self) -> None:
        runners = list(self._runners.values())
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        self._runners.clear()

    # --- the API -------------------------------------------------------------------------------

    async def create(
        self,
        firmware_id: int,
        endpoints: list[str],
        *,
        method: str = "pull-coap",
        max_concurrent: int = 50,
        timeouts: dict[str, float] | None = None,
        retries: int = 2,
        product_id: str | None = None,
    ) -> FotaTask:
        package = self.firmware.get(firmware_id)
        if method not in METHODS:
            raise BadArgument(f"method must be one of {', '.join(METHODS)}")
        if not endpoints:
            raise BadArgument("the task names no device")
        unknown = set(timeouts or {}) - set(DEFAULT_TIMEOUTS)
        if unknown:
            raise BadArgument(f"unknown timeouts {sorted(unknown)}; known: {sorted(DEFAULT_TIMEOUTS)}")
        if not 1 <= max_concurrent <= 10_000 or not 0 <= retries <= 100:
            raise BadArgument("max_concurrent must be 1..10000 and retries 0..100")
        options = {"max_concurrent": max_concurrent, "retries": retries, "timeouts": dict(timeouts or {})}
        now = time.time()
        unique = list(dict.fromkeys(endpoints))
        devices = [DeviceProgress(endpoint=e, size=package.size) for e in unique]
        row = {
            "firmware_id": firmware_id,
            "product_id": product_id,
            "method": method,
            "status": "running",
            "options": options,
            "created_at": now,
        }
        device_rows = [
            {"endpoint": d.endpoint, "status": d.status, "details": d.details(), "updated_at": now}
            for d in devices
        ]
        task_id = await self.repository.insert_task(row, device_rows)
        task = FotaTask(task_id, firmware_id, product_id, method, "running", options, now)
        task.devices = {d.endpoint: d for d in devices}
        self.tasks[task_id] = task
        self._publish_task(task)
        self._spawn_runner(task)
        return task

    def get(self, task_id: int) -> FotaTask:
        task = self.tasks.get(task_id)
        if task is None:
            raise UnknownTask(f"no update task {task_id}")
        return task

    def list(self) -> list[FotaTask]:
        return list(self.tasks.values())

    async def cancel(self, task_id: int) -> FotaTask:
        task = self.get(task_id)
        if task.status != "running":
            return task
        task.status = "cancelled"
        task.finished_at = time.time()
        await self.repository.update_task(task.id, {"status": task.status, "finished_at": task.finished_at})
        runner = self._runners.pop(task.id, None)
        if runner is not None:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        for device in task.devices.values():
            if device.status not in TERMINAL:
                was_downloading = device.status in ("downloading", "downloaded")
                device.reason = "the task was cancelled"
                await self._set(task, device, "cancelled")
                if was_downloading:
                    self.server._spawn(self._reset_device(device.endpoint))
        self._publish_task(task)
        return task

    def in_use(self, firmware_id: int) -> bool:
        return any(t.firmware_id == firmware_id and t.status == "running" for t in self.tasks.values())

    def may_fetch(self, firmware_id: int, origin: Origin) -> bool:
        """Over DTLS: only a device that a running task of this package updates, registered from
        this DTLS session with its own PSK identity."""
        identity = origin.secure_identity
        if identity is None:
            return False
        reg = self.server.registrations.by_address(origin.listener, origin.host, origin.port)
        if reg is None or reg.secure_identity != identity:
            return False
        for task in self.tasks.values():
            device = task.devices.get(reg.endpoint)
            if task.firmware_id == firmware_id and task.status == "running" and device is not None:
                if device.status not in TERMINAL:
                    return True
        return False

    def on_served(self, firmware_id: int, endpoint: str | None, origin: Origin | None, end: int) -> None:
        """A block (CoAP) or a chunk (HTTP) up to byte `end` went to a device: its progress."""
        if endpoint is None and origin is not None:
            reg = self.server.registrations.by_address(origin.listener, origin.host, origin.port)
            endpoint = reg.endpoint if reg is not None else None
        if endpoint is None:
            return
        for task in self.tasks.values():
            device = task.devices.get(endpoint)
            if task.firmware_id != firmware_id or task.status != "running" or device is None:
                continue
            if device.status != "downloading":
                continue
            step_before = int(device.percent // 10)
            device.bytes = max(device.bytes, end)
            if int(device.percent // 10) != step_before or end >= device.size:
                self._publish_device(task, device)

    # --- running a task -----------------------------------------------------------------------

    def _spawn_runner(self, task: FotaTask) -> None:
        runner = asyncio.get_running_loop().create_task(self._run(task))
        self._runners[task.id] = runner

    async def _run(self, task: FotaTask) -> None:
        limit = asyncio.Semaphore(int(task.options.get("max_concurrent") or 50))

        async def one(device: DeviceProgress) -> None:
            async with limit:
                await self._run_device(task, device)

        pending = [d for d in task.devices.values() if d.status not in TERMINAL]
        await asyncio.gather(*(one(d) for d in pending))
        if task.status == "running":
            task.status = "finished"
            task.finished_at = time.time()
            await self.repository.update_task(
                task.id, {"status": task.status, "finished_at": task.finished_at}
            )
            self._publish_task(task)
            self._runners.pop(task.id, None)

    async def _run_device(self, task: FotaTask, device: DeviceProgress) -> None:
        try:
            await self._update_device(task, device)
        except asyncio.CancelledError:
            raise
        except DeviceFailed as exc:
            device.reason = exc.reason
            device.update_result = exc.update_result
            await self._set(task, device, "failed")
        except (ServerError, TimeoutError) as exc:
            device.reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            await self._set(task, device, "failed")
        except Exception as exc:
            log.exception("update of %s failed", device.endpoint)
            device.reason = f"internal error: {exc}"
            await self._set(task, device, "failed")

    async def _update_device(self, task: FotaTask, device: DeviceProgress) -> None:
        timeouts = task.timeouts
        package = self.firmware.get(task.firmware_id)
        endpoint = device.endpoint
        earlier = device.status
        await self._set(task, device, "version-check")
        await self._wait_online(endpoint, timeouts["online"])
        version = await self._read_version(endpoint, timeouts["version_check"])
        if device.from_version is None:
            device.from_version = version
        if version == package.version:
            if earlier in ("downloaded", "updating"):
                device.update_result = int(UpdateResult.SUCCESS)
            else:
                device.reason = "already on the target version"
            device.bytes = device.size
            await self._set(task, device, "succeeded")
            return
        await self._observe(endpoint)
        retries = int(task.options.get("retries", 2))
        while True:
            state, result, pkg_version = await self._read_object(endpoint, timeouts["version_check"])
            if state == State.DOWNLOADED and pkg_version == package.version:
                break
            if state != State.DOWNLOADING:
                device.attempts += 1
                await self._set(task, device, "downloading")
                await self._deliver(task, device, timeouts)
            else:
                await self._set(task, device, "downloading")
            try:
                state, result = await self._wait_download(endpoint, timeouts)
            except TimeoutError:
                state, result = State.IDLE, None
            if state == State.DOWNLOADED:
                break
            if (result is None or result in RETRYABLE) and device.attempts <= retries:
                continue
            if result is None:
                raise DeviceFailed("download timed out")
            raise DeviceFailed(meaning(result), int(result))
        device.bytes = device.size
        await self._set(task, device, "downloaded")
        with self.server.subscribe(endpoint=endpoint, kinds=("registration.",)) as registrations:
            await self.server.execute(endpoint, "/5/0/2", timeout=timeouts["version_check"], queue=True)
            await self._set(task, device, "updating")
            await self._wait_update(endpoint, registrations, timeouts)
        version = await self._read_version(endpoint, timeouts["version_check"])
        if version != package.version:
            raise DeviceFailed(f"the device came back on version {version!r}, not {package.version!r}")
        with contextlib.suppress(ServerError, TimeoutError):
            _state, result, _v = await self._read_object(endpoint, timeouts["version_check"])
            device.update_result = int(result) if result is not None else None
        await self._set(task, device, "succeeded")

    async def _wait_online(self, endpoint: str, timeout: float) -> None:
        if self.server.registration(endpoint) is not None:
            return
        with self.server.subscribe(endpoint=endpoint, kinds=(EventKind.REGISTRATION_REGISTERED,)) as events:
            if self.server.registration(endpoint) is not None:
                return
            try:
                await events.get(timeout=timeout)
            except TimeoutError as exc:
                raise DeviceFailed("the device did not come online") from exc

    async def _read_version(self, endpoint: str, timeout: float) -> str:
        node = await asyncio.wait_for(self.server.read(endpoint, "/3/0/3", queue=True), timeout)
        value = node.value if isinstance(node, SingleResource) else None
        return str(value) if value is not None else ""

    async def _read_object(
        self, endpoint: str, timeout: float, *, queue: bool = True
    ) -> tuple[int | None, int | None, str | None]:
        node = await asyncio.wait_for(self.server.read(endpoint, "/5/0", queue=queue), timeout)
        state = _value(node, Resource.STATE)
        result = _value(node, Resource.UPDATE_RESULT)
        version = _value(node, Resource.PKG_VERSION)
        return (
            int(state) if state is not None else None,
            int(result) if result is not None else None,
            str(version) if version is not None else None,
        )

    async def _observe(self, endpoint: str) -> None:
        for path in ("/5/0/3", "/5/0/5"):
            with contextlib.suppress(ServerError, TimeoutError):
                await self.server.observe(endpoint, path)

    def uri_for(self, task: FotaTask, endpoint: str) -> str:
        """The package URI for `endpoint`: over the listener (and DTLS) it registered with."""
        firmware_id = task.firmware_id
        query = f"?ep={endpoint}"
        if task.method == "pull-http":
            return f"{self.http_base}/fw/{firmware_id}{query}"
        reg = self.server.registration(endpoint)
        if reg is None:
            raise DeviceSleeping(endpoint)
        listener = self.server.listener_for(reg)
        host = listener.host
        for spec in self.server.settings.all_listeners():
            if spec.name == reg.listener and spec.public_host:
                host = spec.public_host
        dtls = self.server.dtls.get(reg.listener)
        if reg.secure_identity is not None and dtls is not None:
            return f"coaps://{host}:{dtls.address[1]}/fw/{firmware_id}{query}"
        return f"coap://{host}:{listener.port}/fw/{firmware_id}{query}"

    async def _deliver(self, task: FotaTask, device: DeviceProgress, timeouts: dict[str, float]) -> None:
        endpoint = device.endpoint
        if task.method == "push":
            data = self.firmware.content(task.firmware_id)
            try:
                await asyncio.wait_for(
                    self.server.write(endpoint, "/5/0/0", data, queue=True, timeout=timeouts["download"]),
                    timeouts["download"],
                )
            except ServerError as exc:
                # A 4.13 (no room) or 4.08 is in the object's Update Result; read it below.
                log.info("push to %s answered %s", endpoint, exc)
            device.bytes = device.size
            return
        uri = self.uri_for(task, endpoint)
        await asyncio.wait_for(
            self.server.write(endpoint, "/5/0/1", uri, queue=True, timeout=timeouts["version_check"]),
            timeouts["version_check"],
        )

    async def _wait_download(self, endpoint: str, timeouts: dict[str, float]) -> tuple[int, int | None]:
        """Until State is Downloaded, or Idle with a result (the download failed)."""
        poll = timeouts["poll"]
        async with asyncio.timeout(timeouts["download"]):
            with self.server.subscribe(
                endpoint=endpoint, kinds=(EventKind.NOTIFICATION, "registration.")
            ) as events:
                while True:
                    try:
                        # A sleeping queue-mode device is not asked: its notification wakes us.
                        state, result, _v = await self._read_object(
                            endpoint, timeouts["version_check"], queue=False
                        )
                    except (DeviceSleeping, TimeoutError):
                        state, result = None, None
                    if state == State.DOWNLOADED:
                        return int(state), result
                    if state == State.IDLE and result not in (None, UpdateResult.INITIAL):
                        return int(state), result
                    with contextlib.suppress(TimeoutError):
                        await events.get(timeout=poll)

    async def _wait_update(
        self, endpoint: str, registrations: Subscription, timeouts: dict[str, float]
    ) -> None:
        """Until the device registers again; State 2 with Update Result 8 is a failed update."""
        poll = timeouts["poll"]
        try:
            async with asyncio.timeout(timeouts["update"]):
                while True:
                    with contextlib.suppress(TimeoutError):
                        event = await registrations.get(timeout=poll)
                        if event.kind == EventKind.REGISTRATION_REGISTERED:
                            await self._settle(endpoint)
                            return
                    with contextlib.suppress(ServerError, TimeoutError):
                        node = await asyncio.wait_for(self.server.read(endpoint, "/5/0"), poll)
                        state, result = _value(node, Resource.STATE), _value(node, Resource.UPDATE_RESULT)
                        if state is not None and int(state) != State.UPDATING and result not in (None, 0, 1):
                            raise DeviceFailed(meaning(int(result)), int(result))
        except TimeoutError as exc:
            raise DeviceFailed("the device did not come back after the update") from exc

    async def _settle(self, endpoint: str) -> None:
        """The registration event is published before the server has finished with the Register
        (the device counts as awake, queued requests flushed): wait for that, briefly."""
        for _ in range(100):
            reg = self.server.registration(endpoint)
            if reg is not None and self.server.queue.is_awake(reg):
                return
            await asyncio.sleep(0.01)

    async def _reset_device(self, endpoint: str) -> None:
        """After a cancel: reset the device's object (an empty Package URI)."""
        with contextlib.suppress(ServerError, TimeoutError):
            await self.server.write(endpoint, "/5/0/1", "", timeout=5.0)

    # --- state and events ----------------------------------------------------------------------

    async def _set(self, task: FotaTask, device: DeviceProgress, status: str) -> None:
        device.status = status
        await self.repository.update_device(
            task.id,
            device.endpoint,
            {"status": status, "details": device.details(), "updated_at": time.time()},
        )
        self._publish_device(task, device)
        if status in TERMINAL:
            self._publish_task(task)

    def _publish_device(self, task: FotaTask, device: DeviceProgress) -> None:
        self.server.bus.publish(EventKind.FOTA_DEVICE, device.endpoint, task_id=task.id, **device.as_dict())

    def _publish_task(self, task: FotaTask) -> None:
        self.server.bus.publish(EventKind.FOTA_TASK, None, **task.as_dict(with_devices=False))
