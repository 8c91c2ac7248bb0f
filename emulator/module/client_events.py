"""The module's `ClientEvents`: what its LwM2M client reports becomes the device state and a
`+MIPLEVENT: 0,<n>` URC (manual §3.20; the numbers each model shows are in emulator.module.events).
"""

from __future__ import annotations

from emulator.module.core import ModuleCore
from emulator.module.device import State
from emulator.module.events import Event
from emulator.module.login import Login


class ClientEventSink:
    """`ClientEvents` over the shared state (the live `Session` forwards to it)."""

    def __init__(self, core: ModuleCore, login: Login) -> None:
        self._core = core
        self._login = login

    def bootstrap_started(self) -> None:
        self._core.bootstrapping = True
        self._core.show_event(Event.BOOTSTRAP_START)

    def bootstrap_succeeded(self, server_host: str, server_port: int, psk: bytes | None) -> None:
        core = self._core
        core.bootstrapping = False
        if core.device is not None:
            core.device.host, core.device.port, core.device.bootstrap = server_host, server_port, False
            if psk is not None:
                core.device.psk = psk
                core.device.psk_text = psk.decode("utf-8", errors="replace")
        core.show_event(Event.BOOTSTRAP_SUCCESS)

    def bootstrap_failed(self) -> None:
        self._login.end(abort=True)
        self._core.show_event(Event.BOOTSTRAP_FAILED)

    def connect_succeeded(self) -> None:
        self._core.show_event(Event.CONNECT_SUCCESS)

    def connect_failed(self) -> None:
        """Terminal: shown as 5 where reported, then 7."""
        self._login.end(abort=True)
        self._core.show_event(Event.CONNECT_FAILED)
        self._core.show_event(Event.REG_FAILED)

    def register_succeeded(self) -> None:
        core = self._core
        if core.device is None or core.device.state is not State.OPENING:
            return
        core.cancel_timer("open")
        core.device.state = State.REGISTERED
        core.queue.clear_stats()
        self._login.start_lifetime(core.lifetime)
        core.show_event(Event.REG_SUCCESS)

    def register_failed(self) -> None:
        self._login.end(abort=True)
        self._core.show_event(Event.REG_FAILED)

    def register_timeout(self) -> None:
        self._login.end(abort=True)
        self._core.show_event(Event.REG_TIMEOUT)

    def update_succeeded(self) -> None:
        core = self._core
        if core.device is None or core.device.state is not State.REGISTERED:
            return
        self._login.start_lifetime(core.pending_lifetime or core.lifetime)
        core.show_event(Event.UPDATE_SUCCESS)

    def update_failed(self) -> None:
        self._core.show_event(Event.UPDATE_FAILED)

    def update_timeout(self) -> None:
        self._core.show_event(Event.UPDATE_TIMEOUT)

    def lifetime_expired(self) -> None:
        """The registration is gone (the lifetime ran out, or the server forgot it)."""
        self._login.expire()

    def deregistered(self) -> None:
        self._login.end(abort=False)
        self._core.show_event(Event.UNREG_DONE)

    def deregister_failed(self) -> None:
        core = self._core
        if core.device is not None and core.device.state is State.CLOSING:
            core.device.state = State.REGISTERED
        core.show_event(Event.UNREG_FAILED)

    def notify_acked(self, ackid: int | None) -> None:
        if ackid is not None:
            self._core.show_event(Event.NOTIFY_SUCCESS, ackid)

    def notify_failed(self, ackid: int | None) -> None:
        self._core.show_event(Event.NOTIFY_FAILED, ackid)

    def device_deleted(self) -> None:
        self._login.end(abort=True)
        self._core.show_event(Event.DEVICE_DELETED)

    def dtls_ip_aged(self) -> None:
        self._core.show_event(Event.DTLS_IP_AGED)

    def oversized_packet_dropped(self) -> None:
        self._core.show_event(Event.PACKET_TOO_LONG)
