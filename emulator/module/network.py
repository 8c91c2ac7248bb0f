"""`ClientPort` on the real LwM2M client: the emulated module's network side (manual §3.6 - §3.9
AT+MIPLOPEN / UPDATE / CLOSE / NOTIFY, and the `+MIPLEVENT` numbers of §3.20).

Design choices:
- Every `ClientPort` call is synchronous: it starts one asyncio task on the running loop and the
  task reports its outcome through the owner's `ClientEvents`. Tasks run one after another (a
  lock), as a module's single uplink does.
- A fresh `Lwm2mClient` per login (the module builds a port per AT+MIPLOPEN); the owner (a
  `Session` over the module) is the client's `RequestHandler`.
- Carrier host names (`nbiotacc.heclouds.com`, ...) resolve through a small map, by default every
  name to 127.0.0.1, so the emulator always talks to the local testbed. IP literals are kept.
- Outcomes: a `ClientError` without a code (no answer) is a timeout, with a code a failure; an
  Update answered 4.04 means the registration is gone (`lifetime_expired`).
- Left out: Bootstrap (reported as `bootstrap_failed`) and DTLS (reported as `connect_failed`);
  the notification's `content_format` is not forwarded (the client picks the format).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.settings import ClientSettings, ObjectLinks
from emulator.module.ports import ClientConfig, ClientOwner, Notification
from lwm2m.model import ModelRegistry
from lwm2m.numbers import CoapCode
from lwm2m.path import Path

log = logging.getLogger(__name__)

DEFAULT_ADDRESS: Final = "127.0.0.1"


class HostMap:
    """Carrier host name -> IP address; names not in the map go to `default`."""

    def __init__(self, names: Mapping[str, str] | None = None, default: str = DEFAULT_ADDRESS) -> None:
        self.names = {k.lower(): v for k, v in (names or {}).items()}
        self.default = default

    def resolve(self, host: str) -> str:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return self.names.get(host.lower(), self.default)
        return host


class AiocoapClientPort:
    """One login's LwM2M client, driven by the module through `ClientPort`."""

    def __init__(
        self,
        owner: ClientOwner,
        model: ModelRegistry,
        *,
        hosts: HostMap | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self.owner = owner
        self.model = model
        self.hosts = hosts or HostMap()
        self.request_timeout = request_timeout
        self.client: Lwm2mClient | None = None
        self._object_links: tuple[Path, ...] = ()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._aborted = False
        self._stopping: asyncio.Task[None] | None = None

    # -- ClientPort ---------------------------------------------------------------------------

    def open(self, config: ClientConfig) -> None:
        self._object_links = config.object_links
        self._spawn(self._open(config))

    def update(self, lifetime: int | None, with_objects: bool, object_links: tuple[Path, ...]) -> None:
        self._object_links = object_links
        self._spawn(self._update(lifetime, with_objects))

    def close(self) -> None:
        self._spawn(self._close())

    def abort(self) -> None:
        self._aborted = True
        for task in list(self._tasks):
            task.cancel()
        client, self.client = self.client, None
        if client is not None:
            self._stopping = asyncio.get_running_loop().create_task(client.stop())

    def notify(self, notification: Notification) -> bool:
        if self.client is None or self._aborted:
            return False
        self._spawn(self._notify(self.client, notification), serial=False)
        return True

    # -- the work -----------------------------------------------------------------------------

    def _spawn(self, work: Awaitable[None], *, serial: bool = True) -> None:
        async def run() -> None:
            if serial:
                async with self._lock:
                    if not self._aborted:
                        await work
            else:
                await work

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("client task failed", exc_info=task.exception())

    def _links(self) -> ObjectLinks:
        paths = self._object_links
        return ObjectLinks(
            instances=[p for p in paths if p.instance_id is not None],
            objects={p.object_id: None for p in paths},
        )

    async def _open(self, config: ClientConfig) -> None:
        if config.bootstrap:
            log.info("bootstrap is not supported by the emulated network port")
            self.owner.bootstrap_failed()
            return
        if config.dtls:
            log.info("DTLS is not supported by the emulated network port")
            self.owner.connect_failed()
            return
        extra = () if config.auth_code is None else ((63, config.auth_code.encode("utf-8")),)
        settings = ClientSettings(
            endpoint=config.endpoint,
            server_host=self.hosts.resolve(config.server_host),
            server_port=config.server_port,
            lifetime=config.lifetime,
            binding=config.binding or "U",
            object_links=self._links,
            extra_options=extra,
            request_timeout=self.request_timeout,
        )
        client = Lwm2mClient(settings, self.owner, self.model)
        try:
            await client.start()
        except OSError as exc:
            log.info("client socket failed: %s", exc)
            self.owner.connect_failed()
            return
        self.client = client
        self.owner.connect_succeeded()
        await _report(
            client.register(),
            self.owner.register_succeeded,
            self.owner.register_failed,
            self.owner.register_timeout,
        )

    async def _update(self, lifetime: int | None, with_objects: bool) -> None:
        client = self.client
        if client is None:
            self.owner.update_failed()
            return
        try:
            await client.update(lifetime=lifetime, with_objects=with_objects)
        except ClientError as exc:
            if exc.code is None:
                self.owner.update_timeout()
            elif exc.code == CoapCode.NOT_FOUND:
                self.owner.lifetime_expired()
            else:
                self.owner.update_failed()
            return
        self.owner.update_succeeded()

    async def _close(self) -> None:
        client = self.client
        if client is None:
            self.owner.deregister_failed()
            return
        try:
            await client.deregister()
        except ClientError:
            self.owner.deregister_failed()
            return
        self.client = None
        await client.stop()
        self.owner.deregistered()

    async def _notify(self, client: Lwm2mClient, notification: Notification) -> None:
        futures = await client.notify(
            notification.observation_id, notification.node, confirmable=notification.confirmable
        )
        results = [await f for f in futures] if futures else [False]
        if not notification.confirmable:
            return
        if all(results):
            self.owner.notify_acked(notification.ackid)
        else:
            self.owner.notify_failed(notification.ackid)

    async def aclose(self) -> None:
        """Stop everything without a message (used when the emulator shuts down)."""
        self.abort()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stopping is not None:
            await self._stopping


async def _report(
    work: Awaitable[object],
    succeeded: Callable[[], None],
    failed: Callable[[], None],
    timed_out: Callable[[], None],
) -> None:
    try:
        await work
    except ClientError as exc:
        (timed_out if exc.code is None else failed)()
        return
    succeeded()


def port_factory(
    model: ModelRegistry, hosts: HostMap | None = None, request_timeout: float = 10.0
) -> Callable[[ClientOwner], AiocoapClientPort]:
    """A `ClientFactory` for `Module(client_factory=...)`."""

    def build(owner: ClientOwner) -> AiocoapClientPort:
        return AiocoapClientPort(owner, model, hosts=hosts, request_timeout=request_timeout)

    return build
