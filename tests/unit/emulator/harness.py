"""Test harness for the emulated module: an in-memory ClientPort and a line-collecting module."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from emulator.module.clock import ManualClock
from emulator.module.module import Module
from emulator.module.ports import ClientConfig, ClientOwner, Notification
from lwm2m.path import Path

MID_URC = re.compile(r"^(\+MIPL(?:READ|WRITE|EXECUTE|PARAMETER|OBSERVE|DISCOVER)): ?(\d+), ?(\d+)(.*)$")


@dataclass
class FakeClient:
    """Answers every request at once as told by the flags; records what it was asked."""

    owner: ClientOwner
    register: str = "ok"  # ok | fail | silent | bootstrap
    update_ok: bool = True
    close_ok: bool = True
    ack_notifies: bool = True
    accept_notifies: bool = True
    configs: list[ClientConfig] = field(default_factory=list)
    updates: list[tuple[int | None, bool]] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    aborted: bool = False
    closed: bool = False

    def open(self, config: ClientConfig) -> None:
        self.configs.append(config)
        if self.register == "ok":
            if config.bootstrap:
                self.owner.bootstrap_started()
                self.owner.bootstrap_succeeded("183.230.40.40", 5684, b"cPYxj0cTs9qMVL72")
            self.owner.register_succeeded()
        elif self.register == "fail":
            self.owner.register_failed()
        elif self.register == "bootstrap":
            self.owner.bootstrap_started()

    def update(self, lifetime: int | None, with_objects: bool, object_links: tuple[Path, ...]) -> None:
        self.updates.append((lifetime, with_objects))
        if self.update_ok:
            self.owner.update_succeeded()
        else:
            self.owner.update_failed()

    def close(self) -> None:
        self.closed = True
        if self.close_ok:
            self.owner.deregistered()
        else:
            self.owner.deregister_failed()

    def abort(self) -> None:
        self.aborted = True

    def notify(self, notification: Notification) -> bool:
        if not self.accept_notifies:
            return False
        self.notifications.append(notification)
        if notification.confirmable and self.ack_notifies:
            self.owner.notify_acked(notification.ackid)
        return True


class Harness:
    def __init__(
        self, model: str = "ML307R", *, echo: bool = False, first_mid: int = 18172, **client_flags: object
    ):
        self.clock = ManualClock()
        self.lines: list[str] = []
        self.clients: list[FakeClient] = []
        self.client_flags = client_flags
        self.module = Module(
            model,
            client_factory=self._make_client,
            clock=self.clock,
            sink=self.lines.append,
            echo=echo,
            first_mid=first_mid,
        )
        self._read = 0

    def _make_client(self, owner: ClientOwner) -> FakeClient:
        client = FakeClient(owner, **self.client_flags)  # type: ignore[arg-type]
        self.clients.append(client)
        return client

    @property
    def client(self) -> FakeClient:
        return self.clients[-1]

    def new(self) -> list[str]:
        out = self.lines[self._read :]
        self._read = len(self.lines)
        return out

    def send(self, line: str) -> list[str]:
        self.new()
        self.module.feed(line.encode() + b"\r\n")
        return self.new()

    def setup_registered(self, objects: str = 'AT+MIPLADDOBJ=0,3200,1,"1",0,0') -> None:
        assert self.send('AT+MIPLCREATEEX="183.230.40.40:5683",0') == ["+MIPLCREATEEX: 0", "OK"]
        assert self.send(objects) == ["OK"]
        assert self.send("AT+MIPLOPEN=0,3000,30") == ["OK", "+MIPLEVENT: 0,6"]


def normalise(line: str) -> str:
    """Hide the message id of a request URC and the spaces after its commas."""
    match = MID_URC.match(line)
    if not match:
        return line
    return f"{match.group(1)}: {match.group(2)},<mid>{match.group(4).replace(', ', ',')}"


def mid_of(line: str) -> int:
    match = MID_URC.match(line)
    assert match, line
    return int(match.group(3))
