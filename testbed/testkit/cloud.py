"""`PrivateCloud`: the LwM2M server, its carrier listeners and the OneNET-compatible HTTP API on a
background event loop, with synchronous helpers for tests.

Design choices:
- The server's carrier listeners (`server.settings.carrier_listeners`: OneNET bootstrap and
  access, CTWing, Yanfei, Huawei) on the carriers' real ports (5683 CoAP, 5684 DTLS), each at a
  loopback address of this cloud's own (`addresses`), plus a `default` listener (any endpoint,
  ephemeral port on 127.0.0.1). `hosts` maps every carrier host the emulator knows (names and
  IP literals) to this cloud's listener; unknown names go to the OneNET address, so nothing a
  module sends leaves the cloud. A bootstrap writes the access listener's own address, which the
  module then reaches directly.
- The server and its HTTP API are composed by `testbed.cloud.Cloud`, the one composition root;
  with `http=False` `api_url` is None and the product's `base_url` too.
- `wait_for_event` and `wait_for_datapoint` keep a cursor per filter, like `Module.expect`: each
  call returns the next match after the previous one, so a test reads the history in order.
"""

from __future__ import annotations

import contextlib
import itertools
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeVar

from server.settings import CARRIER_ADDRESSES, ListenerSettings, Settings, carrier_listeners
from testbed.cloud import Cloud
from testbed.testkit.addresses import free_addresses
from testbed.testkit.loop import LoopThread
from transport.address_plan import ACCESS_HOST_NAMES, CARRIER_PLAN, COAP_PORT, DTLS_PORT

if TYPE_CHECKING:
    from lwm2m.node import Node
    from server.domain import Registration
    from server.events import Event
    from server.lwm2m_server import Lwm2mServer, Observation
    from server.services.provisioning import Device
    from server.store.repository import Datapoint

# The host name a firmware uses for each carrier's LwM2M (access) server (platforms.md).
CARRIER_HOSTS: Final[dict[str, str]] = dict(ACCESS_HOST_NAMES)
POLL_INTERVAL: Final = 0.05
START_ATTEMPTS: Final = 5
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CarrierProduct:
    """A provisioned product: what a backend needs to call the OneNET-compatible API."""

    id: str
    name: str
    carrier: str
    api_key: str
    base_url: str | None


class PrivateCloud:
    """A private carrier cloud in this process. Use as a context manager or `start()` / `stop()`."""

    def __init__(
        self,
        database_url: str,
        *,
        http: bool = True,
        request_timeout: float = 5.0,
    ) -> None:
        self.database_url = database_url
        self.http = http
        self.request_timeout = request_timeout
        self.admin_key = secrets.token_urlsafe(18)
        self.hosts: dict[str, str] = {}
        self.default_host = "127.0.0.1"
        self.listener_addresses: dict[str, str] = {}
        self.api_url: str | None = None
        self._loop: LoopThread | None = None
        self._cloud: Cloud | None = None
        self._events: list[Event] = []
        self._events_changed = threading.Condition()
        self._event_cursors: dict[tuple[str, str | None], int] = {}
        self._datapoint_cursors: dict[tuple[str, str], int] = {}
        self._products = itertools.count(1)
        self._created_database: str | None = None
        # Firmware packages uploaded to this cloud live here and go with it.
        self._firmware_dir = tempfile.mkdtemp(prefix="lwm2m-firmware-")

    # --- lifecycle -----------------------------------------------------------------------------

    @property
    def loop(self) -> LoopThread:
        if self._loop is None:
            raise RuntimeError("PrivateCloud not started")
        return self._loop

    @property
    def cloud(self) -> Cloud:
        """The composed cloud (`testbed.cloud.Cloud`) this test kit drives."""
        if self._cloud is None:
            raise RuntimeError("PrivateCloud not started")
        return self._cloud

    @property
    def server(self) -> Lwm2mServer:
        """The `Lwm2mServer`; call its coroutines through `run()` (it lives on the cloud's loop)."""
        return self.cloud.server

    def start(self) -> PrivateCloud:
        self._loop = LoopThread("lwm2m-private-cloud")
        try:
            self.loop.run(self._start())
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        from testbed.testkit.database import create_postgres_database, is_postgres

        if is_postgres(self.database_url):
            self._created_database = await create_postgres_database(self.database_url)

        names = list(CARRIER_ADDRESSES)
        tried: set[str] = set()
        for attempt in range(START_ATTEMPTS):
            addresses = dict(
                zip(names, free_addresses(len(names), (COAP_PORT, DTLS_PORT), tried), strict=True)
            )
            tried.update(addresses.values())
            cloud = Cloud(self._settings(addresses), http=self.http, announce_firmware_url=True)
            try:
                await cloud.start_server()
            except OSError:
                if attempt == START_ATTEMPTS - 1:
                    raise
                continue
            self._cloud = cloud
            self.listener_addresses = addresses
            break
        self.hosts = self._host_map()
        self.default_host = self.listener_addresses.get("onenet", "127.0.0.1")
        self.server.bus.add_listener(self._record_event)
        if self.http:
            await self.cloud.start_http()
            self.api_url = self.cloud.http_url

    def _host_map(self) -> dict[str, str]:
        """Every carrier host the emulator knows (names and the carriers' IP literals) -> the
        address of this cloud's listener that stands in for it."""
        return {
            name: self.listener_addresses[host.listener]
            for host in CARRIER_PLAN
            for name in (host.host_name, *host.aliases)
        }

    def _settings(self, addresses: dict[str, str]) -> Settings:
        default = ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None)
        return Settings(
            database_url=self._created_database or self.database_url,
            listeners=[default, *carrier_listeners(COAP_PORT, DTLS_PORT, addresses)],
            http_host="127.0.0.1",
            http_port=0,
            request_timeout=self.request_timeout,
            expiry_sweep_interval=0.2,
            api_key=self.admin_key,
            firmware_dir=self._firmware_dir,
        )

    def stop(self) -> None:
        shutil.rmtree(self._firmware_dir, ignore_errors=True)
        loop, self._loop = self._loop, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            loop.run(self._stop(), timeout=20.0)
        loop.stop()

    async def _stop(self) -> None:
        cloud, self._cloud = self._cloud, None
        if cloud is not None:
            await cloud.stop()
        created, self._created_database = self._created_database, None
        if created is not None:
            from testbed.testkit.database import drop_postgres_database

            await drop_postgres_database(self.database_url, created)

    def __enter__(self) -> PrivateCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------------

    @property
    def coap_address(self) -> tuple[str, int]:
        """(host, port) of the `default` listener, which accepts any endpoint."""
        host, port = self.server.listeners["default"].address[:2]
        return str(host), int(port)

    def listener_address(self, name: str) -> tuple[str, int]:
        """(host, 5683) of a carrier listener (`onenet`, `onenet-bootstrap`, `ctwing`, ...)."""
        return self.listener_addresses[name], COAP_PORT

    # --- running code on the cloud -------------------------------------------------------------

    def run(self, awaitable: Awaitable[T], timeout: float | None = 60.0) -> T:
        """Run a coroutine of the server (`cloud.run(cloud.server.read(ep, "/3/0"))`)."""
        return self.loop.run(awaitable, timeout)

    # --- provisioning --------------------------------------------------------------------------

    def create_product(self, carrier: str = "onenet", name: str | None = None) -> CarrierProduct:
        """A new product of `carrier`, with its master API key."""
        title = name or f"{carrier}-product-{next(self._products)}"
        product = self.run(self.server.provisioning.create_product(title, carrier))
        return CarrierProduct(product.id, product.name, product.carrier, product.master_key, self.api_url)

    def provision(
        self,
        product: CarrierProduct,
        imei: str,
        imsi: str | None = None,
        *,
        title: str | None = None,
        auth_code: str | None = None,
        obsv: bool = True,
    ) -> Device:
        """Create the device `imei` in `product` (what the carrier console does before a login)."""
        return self.run(
            self.server.provisioning.create_device(
                product_id=product.id,
                imei=imei,
                imsi=imsi,
                title=title or imei,
                auth_code=auth_code,
                obsv=obsv,
            )
        )

    # --- the server's view ---------------------------------------------------------------------

    def registration(self, endpoint: str) -> Registration | None:
        return self.loop.call(lambda: self.server.registration(endpoint))

    def wait_for_registration(self, endpoint: str, timeout: float = 10.0) -> Registration:
        deadline = time.monotonic() + timeout
        while (registration := self.registration(endpoint)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{endpoint!r} did not register within {timeout} s")
            time.sleep(POLL_INTERVAL)
        return registration

    def read(self, endpoint: str, path: str, timeout: float | None = None) -> Node:
        return self.run(self.server.read(endpoint, path, timeout=timeout))

    def observe(self, endpoint: str, path: str, **attributes: float) -> Observation:
        return self.run(self.server.observe(endpoint, path, attributes=attributes or None))

    # --- waiting for what happened -------------------------------------------------------------

    def _record_event(self, event: Event) -> None:
        with self._events_changed:
            self._events.append(event)
            self._events_changed.notify_all()

    @property
    def events(self) -> list[Event]:
        """Every event since the cloud started (`registration.*`, `notification`, `send`, ...)."""
        with self._events_changed:
            return list(self._events)

    def wait_for_event(self, kind: str, *, endpoint: str | None = None, timeout: float = 10.0) -> Event:
        """The next event whose kind starts with `kind` (for `endpoint` when given)."""
        key = (kind, endpoint)
        deadline = time.monotonic() + timeout
        with self._events_changed:
            while True:
                start = self._event_cursors.get(key, 0)
                for index in range(start, len(self._events)):
                    event = self._events[index]
                    if event.kind.startswith(kind) and (endpoint is None or event.endpoint == endpoint):
                        self._event_cursors[key] = index + 1
                        return event
                self._event_cursors[key] = len(self._events)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({e.kind for e in self._events})
                    raise TimeoutError(f"no {kind!r} event within {timeout} s (events seen: {seen})")
                self._events_changed.wait(remaining)

    def datapoints(self, endpoint: str, path: str | None = None, limit: int = 100) -> list[Datapoint]:
        """Stored values of `endpoint` (optionally one path), oldest first."""
        return self.run(self.server.datapoints(endpoint, path, limit=limit))

    def wait_for_datapoint(self, endpoint: str, path: str, timeout: float = 10.0) -> Datapoint:
        """The next value stored for `endpoint` at `path` (a notification or a Send) after the one
        the previous call returned."""
        key = (endpoint, path)
        deadline = time.monotonic() + timeout
        while True:
            after = self._datapoint_cursors.get(key)
            found = self.run(self.server.datapoints(endpoint, path, after_id=after, limit=1))
            if found:
                self._datapoint_cursors[key] = found[0].id
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no new datapoint of {endpoint!r} at {path} within {timeout} s")
            time.sleep(POLL_INTERVAL)
