"""A listener whose port is taken fails with OSError and leaves no socket open (aiocoap's own
socket is closed from the exception's traceback: transport.failed_bind)."""

from __future__ import annotations

import socket

import aiocoap
import pytest
from aiocoap import resource

from transport.failed_bind import close_sockets_left_by


async def test_the_socket_of_a_bind_on_a_taken_port_is_closed_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(OSError) as caught:
            await aiocoap.Context.create_server_context(
                resource.Site(), bind=("127.0.0.1", port), transports=["udp6"]
            )
        assert close_sockets_left_by(caught.value) == 1
        assert close_sockets_left_by(caught.value) == 0


def test_an_error_from_elsewhere_closes_nothing() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mine:
        try:
            raise OSError("not aiocoap's")
        except OSError as exc:
            assert close_sockets_left_by(exc) == 0
        assert mine.fileno() != -1
