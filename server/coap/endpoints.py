"""The server's CoAP endpoints: one `CoapListener` per configured listener and, when the listener
has a DTLS port, the `DtlsServer` terminating DTLS in front of it (its inner addresses map back to
PSK identities for the listener). Kept by listener name; opened and closed together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from server.coap.dtls import DtlsServer
from server.coap.firmware_resource import FirmwareServer
from server.coap.listener import CoapListener
from server.coap.uplink_resource import UplinkHandler
from server.settings import ListenerSettings


def identity_lookup(dtls: DtlsServer) -> Callable[[str, int], str | None]:
    """Map an inner address of `dtls` back to its peer's PSK identity (UTF-8 text)."""

    def lookup(host: str, port: int) -> str | None:
        session = dtls.session_by_inner((host, port))
        return session.identity.decode("utf-8", "replace") if session is not None else None

    return lookup


class Endpoints:
    """The listeners and DTLS terminators of one server, by listener name."""

    def __init__(self) -> None:
        self.listeners: dict[str, CoapListener] = {}
        self.dtls: dict[str, DtlsServer] = {}

    async def open(
        self,
        spec: ListenerSettings,
        handler: UplinkHandler,
        firmware: FirmwareServer | None,
        psk_lookup: Callable[[bytes], bytes | None],
        max_payload: int,
    ) -> CoapListener:
        listener = CoapListener(spec.name, spec.host, spec.port, handler, max_payload=max_payload)
        listener.firmware = firmware
        await listener.start()
        self.listeners[spec.name] = listener
        if spec.dtls_port is not None:
            dtls = DtlsServer(
                bind=(spec.host, spec.dtls_port), backend=listener.address, psk_lookup=psk_lookup
            )
            await dtls.start()
            self.dtls[spec.name] = dtls
            listener.identity_lookup = identity_lookup(dtls)
        return listener

    async def close(self) -> None:
        for dtls in self.dtls.values():
            await dtls.stop()
        self.dtls.clear()
        for listener in self.listeners.values():
            await listener.stop()
        self.listeners.clear()

    def listener_counters(self) -> dict[str, dict[str, Any]]:
        return {name: asdict(listener.counters) for name, listener in self.listeners.items()}

    def dtls_counters(self) -> dict[str, dict[str, Any]]:
        """Per-listener DTLS counters: handshakes ok / failed by reason, sessions, bytes."""
        result: dict[str, dict[str, Any]] = {}
        for name, dtls in self.dtls.items():
            counters = asdict(dtls.counters)
            counters["handshakes_failed"] = dict(dtls.counters.handshakes_failed)
            result[name] = counters
        return result
