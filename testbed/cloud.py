"""The one composition root: settings in, a running private cloud out.

`Cloud(settings, ...)` builds what every entry point runs: the store and the `Lwm2mServer` (with
its listeners), optionally the HTTP API (`server.api.app.create_app`) served by uvicorn, the web
console, a `ModuleHost` for the console's AT terminal and a cluster node on NATS. The CLI
(`testbed up`, `testbed server`), the test kit (`testbed.testkit.PrivateCloud`) and the
benchmarks (`bench.server_process`, `bench.testbed`) all start their server through it.

    async with Cloud(settings, http=True) as cloud:
        cloud.server.registered(); cloud.http_url

Design choices:
- Two stages, `start_server()` then `start_http()`, because the CLI tells the two failures apart
  (a busy CoAP port and a busy HTTP port name different options) and does work between them
  (the demo products). `start()` runs both; a failed stage releases what it bound and re-raises.
- `stop()` undoes what was started, newest first, and may be called after a failed start.
- Nothing here prints: what a cloud serves is the caller's to say.
- The API, the cluster node and the module host are imported when asked for, so that a
  benchmark's server process carries no emulator and a plain server no HTTP stack.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from server.lwm2m_server import Lwm2mServer
from server.settings import Settings

if TYPE_CHECKING:
    from emulator.hosting import ModuleHost
    from server.api.serve import HttpHandle
    from server.cluster.node import ClusterNode


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """This cloud is one node of a cluster on NATS (server.cluster)."""

    node_id: str
    nats_url: str
    name: str = "testbed"


class Cloud:
    """A private cloud in the running event loop. Use `async with` or `start()` / `stop()`.

    - `http`: serve the API on `settings.http_host`, port `http_port` (default
      `settings.http_port`; 0 picks a port);
    - `console`: mount the web console on the API app;
    - `modules`: host emulated modules for the console (a `ModuleHost` routed to the listeners);
    - `cluster`: join a cluster as a node (its HTTP URL is announced to the other nodes);
    - `announce_firmware_url`: firmware download URLs use the HTTP server's actual address.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: bool = False,
        http_port: int | None = None,
        console: bool = False,
        modules: bool = False,
        cluster: ClusterConfig | None = None,
        announce_firmware_url: bool = False,
    ) -> None:
        self.settings = settings
        self.http = http
        self.http_port = settings.http_port if http_port is None else http_port
        self.console = console
        self.modules = modules
        self.cluster = cluster
        self.announce_firmware_url = announce_firmware_url
        self._server: Lwm2mServer | None = None
        self.node: ClusterNode | None = None
        self.module_host: ModuleHost | None = None
        self.http_handle: HttpHandle | None = None

    @property
    def server(self) -> Lwm2mServer:
        if self._server is None:
            raise RuntimeError("the cloud is not started")
        return self._server

    @property
    def http_url(self) -> str | None:
        """The API's URL as a client on this machine reaches it (a wildcard host on 127.0.0.1)."""
        if self.http_handle is None:
            return None
        host = self.settings.http_host
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{shown}:{self.http_handle.port}"

    # --- lifecycle -----------------------------------------------------------------------------

    async def start_server(self) -> Lwm2mServer:
        """Open the store and the listeners (and join the cluster); on failure release what was
        bound and re-raise."""
        server = Lwm2mServer(self.settings)
        if self.cluster is not None:
            from server.cluster.node import ClusterNode

            self.node = ClusterNode(
                server, self.cluster.node_id, self.cluster.nats_url, cluster=self.cluster.name
            )
            server.cluster = self.node
        self._server = server
        try:
            await server.start()
        except BaseException:
            self._server = None
            with contextlib.suppress(Exception):
                await server.stop()  # releases what was bound, so a probe can name the culprit
            raise
        return server

    async def start_http(self) -> HttpHandle:
        """Serve the API (with the console and the module host when asked) beside the server."""
        from server.api.app import create_app
        from server.api.serve import serve_http

        server = self.server
        if self.modules and self.module_host is None:
            from emulator.hosting import ModuleHost
            from testbed.hosting import module_routes

            self.module_host = ModuleHost(hosts=module_routes(server))
        # The emulator's host answers the API's `ModuleHost` protocol structurally (the emulator
        # may not import the server).
        app = create_app(server, module_host=self.module_host)
        if self.node is not None:
            self.node.waiting_command = app.state.offline.note_waiting
        if self.console:
            from server.console import mount_console

            mount_console(app)
        self.http_handle = await serve_http(app, self.settings.http_host, self.http_port)
        url = self.http_url
        if self.node is not None:
            self.node.http_url = url
        if self.announce_firmware_url and url is not None:
            server.fota.http_base = url
        return self.http_handle

    async def start(self) -> Cloud:
        try:
            await self.start_server()
            if self.http:
                await self.start_http()
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        host, self.module_host = self.module_host, None
        if host is not None:
            await host.close()
        handle, self.http_handle = self.http_handle, None
        if handle is not None:
            await handle.stop()
        server, self._server = self._server, None
        if server is not None:
            await server.stop()
        self.node = None

    async def __aenter__(self) -> Cloud:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()
