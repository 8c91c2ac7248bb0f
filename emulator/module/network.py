"""`ClientPort` on the real LwM2M client: the emulated module's network side (manual §3.6 - §3.9
AT+MIPLOPEN / UPDATE / CLOSE / NOTIFY, and the `+MIPLEVENT` numbers of §3.20).

Design choices:
- Every `ClientPort` call is synchronous: it starts one asyncio task on the running loop and the
  task reports its outcome through the owner's `ClientEvents`. Tasks run one after another (a
  lock), as a module's single uplink does.
- A fresh `Lwm2mClient` per login (the module builds a port per AT+MIPLOPEN); the owner (a
  `Session` over the module) is the client's `RequestHandler`.
- Carrier hosts (`nbiotbt.heclouds.com`, `183.230.40.40`, `lwm2m.ctwing.cn`, ...) resolve
  through `HostMap` (emulator.module.hosts, re-exported here): by default each to the loopback
  address of the testbed's carrier listener (`CARRIER_HOSTS`), other names to 127.0.0.1; other IP
  literals are kept. Overrides map a name or an address, optionally with its port
  (`"127.0.1.2:5684": ("127.0.1.2", 40123)`), which is how tests reach ephemeral ports.
- Bootstrap (manual §5.1, §5.2; platforms.md "Bootstrap"): a separate client sends
  `POST /bs?ep=` (over DTLS with the bootstrap PSK when the host's port is 5684) and accepts what
  OneNET's client accepts (emulator.module.bootstrap): Bootstrap-Write `PUT /0/<inst>` (other objects 4.04, Delete 5.01).
  After Bootstrap-Finish the Security instance that is not a bootstrap server names the LwM2M
  server, parsed as exactly `coap://a.b.c.d:5683` or `coaps://a.b.c.d:5684`; its identity and
  secret become the DTLS credentials, the module learns them (`bootstrap_succeeded`, shown by
  AT+MIPLDEVINFO?) and the login registers there. Any failure is `bootstrap_failed` (event 3).
  The module learns the server by its carrier-side address (`HostMap.carrier_host`: the
  testbed's `127.0.1.2` is shown as `183.230.40.40`, manual §5.2), which routes back here.
- DTLS (port 5684): `DtlsClientTunnel` with the module's PSK identity (`<PSKID>`, else the IMEI)
  and key, its cipher suites and AT+MIPLDTLSNAT interval; a failed handshake is
  `connect_failed` (events 5 / 7).
- Outcomes: a `ClientError` without a code (no answer) is a timeout, with a code a failure; an
  Update answered 4.04 means the registration is gone (`lifetime_expired`).
- Left out: the notification's `content_format` is not forwarded (the client picks the format).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.dtls import DEFAULT_CIPHERS, DtlsClientTunnel, DtlsHandshakeError
from emulator.client.settings import ClientSettings, ObjectLinks
from emulator.module.bootstrap import BootstrappedServer, BootstrapTarget, server_from_security
from emulator.module.fota import BlockAnswer, DownloadFailed
from emulator.module.hosts import CARRIER_HOSTS, HostMap, Target
from emulator.module.ports import ClientConfig, ClientOwner, Notification
from lwm2m.firmware_update import UpdateResult
from lwm2m.model import ModelRegistry
from lwm2m.numbers import CoapCode
from lwm2m.path import Path

__all__ = ["CARRIER_HOSTS", "AiocoapClientPort", "HostMap", "Target", "port_factory"]

log = logging.getLogger(__name__)


def _mbedtls_ciphers(names: tuple[str, ...]) -> tuple[str, ...]:
    """The module table's `TLS_PSK_WITH_...` names in mbedtls spelling (`TLS-PSK-WITH-...`)."""
    return tuple(n.replace("_", "-") for n in names) or DEFAULT_CIPHERS


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
        self.tunnel: DtlsClientTunnel | None = None
        self._object_links: tuple[Path, ...] = ()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._aborted = False
        self._stopping: asyncio.Task[None] | None = None
        # Where the LwM2M server really is (after the host map), for firmware downloads.
        self._server_route: tuple[str, int] | None = None

    # -- ClientPort ---------------------------------------------------------------------------

    def open(self, config: ClientConfig) -> None:
        self._object_links = config.object_links
        self._spawn(lambda: self._open(config))

    def update(self, lifetime: int | None, with_objects: bool, object_links: tuple[Path, ...]) -> None:
        self._object_links = object_links
        self._spawn(lambda: self._update(lifetime, with_objects))

    def close(self) -> None:
        self._spawn(self._close)

    def abort(self) -> None:
        self._aborted = True
        for task in list(self._tasks):
            task.cancel()
        client, self.client = self.client, None
        tunnel, self.tunnel = self.tunnel, None
        if client is not None or tunnel is not None:
            self._stopping = asyncio.get_running_loop().create_task(_shutdown(client, tunnel))

    def notify(self, notification: Notification) -> bool:
        if self.client is None or self._aborted:
            return False
        client = self.client
        self._spawn(lambda: self._notify(client, notification), serial=False)
        return True

    # -- the work -----------------------------------------------------------------------------

    def _spawn(self, work: Callable[[], Awaitable[None]], *, serial: bool = True) -> None:
        # The coroutine is made inside the task, so a task cancelled (aborted) before it starts
        # leaves no coroutine behind to warn "never awaited".
        async def run() -> None:
            if serial:
                async with self._lock:
                    if not self._aborted:
                        await work()
            else:
                await work()

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
            objects={p.object_id: None for p in paths if p.object_id is not None},
        )

    def _extra_options(self, config: ClientConfig) -> tuple[tuple[int, bytes], ...]:
        return () if config.auth_code is None else ((63, config.auth_code.encode("utf-8")),)

    async def _tunnel(
        self, config: ClientConfig, address: tuple[str, int], identity: bytes | None, psk: bytes | None
    ) -> DtlsClientTunnel | None:
        """A DTLS tunnel to `address`, handshaken; None when it cannot be set up."""
        if psk is None or identity is None:
            log.info("DTLS without a PSK or identity")
            return None
        try:
            tunnel = DtlsClientTunnel(
                address,
                identity,
                psk,
                ciphers=_mbedtls_ciphers(config.cipher_suites),
                handshake_timeout=max(1.0, min(float(config.timeout), self.request_timeout)),
                renegotiate_after=float(config.dtls_nat_interval) or None,
            )
        except ValueError as exc:
            log.info("DTLS tunnel refused: %s", exc)
            return None
        try:
            await tunnel.start()
        except (DtlsHandshakeError, OSError) as exc:
            log.info("DTLS handshake with %s failed: %s", address, exc)
            await tunnel.close()
            return None
        except asyncio.CancelledError:
            # The login was aborted mid-handshake: the tunnel's sockets are closed, not leaked.
            await asyncio.shield(tunnel.close())
            raise
        return tunnel

    async def _bootstrap(self, config: ClientConfig) -> BootstrappedServer | None:
        """Client-initiated bootstrap (Core 1.1.1 §6.1.3) against the configured host."""
        address = self.hosts.route(config.server_host, config.server_port)
        tunnel: DtlsClientTunnel | None = None
        if config.dtls:
            tunnel = await self._tunnel(config, address, config.psk_identity, config.psk)
            if tunnel is None:
                return None
        target = BootstrapTarget()
        settings = ClientSettings(
            endpoint=config.endpoint,
            server_host=address[0],
            server_port=address[1],
            extra_options=self._extra_options(config),
            remote_override=tunnel.plain_address if tunnel is not None else None,
            request_timeout=self.request_timeout,
        )
        client = Lwm2mClient(settings, target, self.model)
        try:
            await client.start()
            finished = await client.bootstrap_request()
            await asyncio.wait_for(finished, self.request_timeout)
        except (ClientError, OSError, TimeoutError) as exc:
            log.info("bootstrap failed: %s", exc)
            return None
        finally:
            await _shutdown(client, tunnel)
        return server_from_security(target.security)

    async def _open(self, config: ClientConfig) -> None:
        host, port, dtls = config.server_host, config.server_port, config.dtls
        identity, psk = config.psk_identity, config.psk
        if config.bootstrap:
            self.owner.bootstrap_started()
            server = await self._bootstrap(config)
            if server is None:
                self.owner.bootstrap_failed()
                return
            host, port, dtls = server.host, server.port, server.secure
            identity, psk = server.identity or config.psk_identity, server.psk
            self.owner.bootstrap_succeeded(self.hosts.carrier_host(host, port), port, psk)
        address = self.hosts.route(host, port)
        self._server_route = address
        tunnel: DtlsClientTunnel | None = None
        if dtls:
            tunnel = await self._tunnel(config, address, identity, psk)
            if tunnel is None:
                self.owner.connect_failed()
                return
        settings = ClientSettings(
            endpoint=config.endpoint,
            server_host=address[0],
            server_port=address[1],
            lifetime=config.lifetime,
            binding=config.binding or "U",
            object_links=self._links,
            extra_options=self._extra_options(config),
            remote_override=tunnel.plain_address if tunnel is not None else None,
            request_timeout=self.request_timeout,
        )
        client = Lwm2mClient(settings, self.owner, self.model)
        try:
            await client.start()
        except OSError as exc:
            log.info("client socket failed: %s", exc)
            await _shutdown(None, tunnel)
            self.owner.connect_failed()
            return
        self.client = client
        self.tunnel = tunnel
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
        tunnel, self.tunnel = self.tunnel, None
        await _shutdown(client, tunnel)
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

    # -- firmware downloads (emulator.module.fota.PackageSource) --------------------------------

    def route(self, host: str, port: int) -> tuple[str, int]:
        return self.hosts.route(host, port)

    async def fetch_block(
        self,
        scheme: str,
        host: str,
        port: int,
        path: tuple[str, ...],
        query: tuple[str, ...],
        number: int,
        szx: int,
    ) -> BlockAnswer:
        """One Block2 of a package, from the LwM2M client's socket; `coaps` only to the server
        this login's DTLS session goes to (*(choice)*: the module opens no second session)."""
        client = self.client
        if client is None or self._aborted:
            raise OSError("not connected")
        target = self.hosts.route(host, port)
        remote = target
        if scheme == "coaps":
            if self.tunnel is None or target != self._server_route:
                raise DownloadFailed(
                    UpdateResult.UNSUPPORTED_PROTOCOL, "coaps only over the login's DTLS session"
                )
            remote = self.tunnel.plain_address
        try:
            answer = await client.get_block(remote, path, query, number, szx)
        except ClientError as exc:
            raise OSError(str(exc)) from exc
        block = answer.opt.block2
        return BlockAnswer(
            code=int(answer.code),
            payload=bytes(answer.payload),
            more=bool(block.more) if block is not None else False,
            etag=answer.opt.etag,
            size=answer.opt.size2,
        )

    async def aclose(self) -> None:
        """Stop everything without a message (used when the emulator shuts down)."""
        self.abort()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stopping is not None:
            await self._stopping


async def _shutdown(client: Lwm2mClient | None, tunnel: DtlsClientTunnel | None) -> None:
    if client is not None:
        await client.stop()
    if tunnel is not None:
        await tunnel.close()


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
