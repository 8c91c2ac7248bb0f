"""One client's view of the module (`ClientOwner`): forwards RequestHandler calls and
ClientEvents to the module for as long as the module keeps that client, and answers for it
afterwards (5.03, events ignored), so a client dropped by AT+MIPLDELETE or a login timeout
cannot change the module's state."""

from __future__ import annotations

from collections.abc import Mapping

from emulator.client.handler import DiscoverResult, ReadResult, RequestHandler
from emulator.module.core import NO_ANSWER, ModuleCore
from emulator.module.ports import ClientEvents
from lwm2m.node import Node
from lwm2m.numbers import CoapCode
from lwm2m.path import Path


class Session:
    """The module as one client sees it: forwards until the module drops that client."""

    def __init__(self, core: ModuleCore, requests: RequestHandler, events: ClientEvents) -> None:
        self._core = core
        self._requests = requests
        self._events = events

    @property
    def _live(self) -> bool:
        return self._core.session is self

    # RequestHandler
    async def read(self, path: Path) -> ReadResult:
        return await self._requests.read(path) if self._live else ReadResult(NO_ANSWER)

    async def write(self, path: Path, node: Node, replace: bool) -> CoapCode:
        return await self._requests.write(path, node, replace) if self._live else NO_ANSWER

    async def execute(self, path: Path, arguments: str) -> CoapCode:
        return await self._requests.execute(path, arguments) if self._live else NO_ANSWER

    async def write_attributes(self, path: Path, attributes: Mapping[str, str | None]) -> CoapCode:
        return await self._requests.write_attributes(path, attributes) if self._live else NO_ANSWER

    async def discover(self, path: Path) -> DiscoverResult:
        return await self._requests.discover(path) if self._live else DiscoverResult(NO_ANSWER)

    async def create(self, path: Path, node: Node) -> tuple[CoapCode, int | None]:
        return await self._requests.create(path, node)

    async def delete(self, path: Path) -> CoapCode:
        return await self._requests.delete(path)

    async def observe(self, path: Path, observation_id: int) -> ReadResult:
        return await self._requests.observe(path, observation_id) if self._live else ReadResult(NO_ANSWER)

    async def cancel_observation(self, path: Path, observation_id: int) -> CoapCode:
        return await self._requests.cancel_observation(path, observation_id) if self._live else NO_ANSWER

    # ClientEvents
    def _call(self, name: str, *args: object) -> None:
        if self._live:
            getattr(self._events, name)(*args)

    def bootstrap_started(self) -> None:
        self._call("bootstrap_started")

    def bootstrap_succeeded(self, server_host: str, server_port: int, psk: bytes | None) -> None:
        self._call("bootstrap_succeeded", server_host, server_port, psk)

    def bootstrap_failed(self) -> None:
        self._call("bootstrap_failed")

    def connect_succeeded(self) -> None:
        self._call("connect_succeeded")

    def connect_failed(self) -> None:
        self._call("connect_failed")

    def register_succeeded(self) -> None:
        self._call("register_succeeded")

    def register_failed(self) -> None:
        self._call("register_failed")

    def register_timeout(self) -> None:
        self._call("register_timeout")

    def update_succeeded(self) -> None:
        self._call("update_succeeded")

    def update_failed(self) -> None:
        self._call("update_failed")

    def update_timeout(self) -> None:
        self._call("update_timeout")

    def deregistered(self) -> None:
        self._call("deregistered")

    def deregister_failed(self) -> None:
        self._call("deregister_failed")

    def notify_acked(self, ackid: int | None) -> None:
        self._call("notify_acked", ackid)

    def notify_failed(self, ackid: int | None) -> None:
        self._call("notify_failed", ackid)

    def device_deleted(self) -> None:
        self._call("device_deleted")

    def lifetime_expired(self) -> None:
        self._call("lifetime_expired")

    def dtls_ip_aged(self) -> None:
        self._call("dtls_ip_aged")

    def oversized_packet_dropped(self) -> None:
        self._call("oversized_packet_dropped")
