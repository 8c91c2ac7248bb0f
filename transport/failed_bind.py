"""Sockets a failed aiocoap bind leaves open.

aiocoap 0.4.17 (pinned) creates its UDP socket, then binds it (`udp6.MessageInterfaceUDP6.
create_server_transport_endpoint`); when the bind fails (the port is taken) it raises without
closing the socket, which is collected later with a ResourceWarning. The socket is still a local
variable of aiocoap's frame in the exception's traceback: `close_sockets_left_by(exc)` closes the
sockets held by aiocoap's frames there, so a listener that cannot start leaves nothing behind.
"""

from __future__ import annotations

import socket
from types import TracebackType


def close_sockets_left_by(exc: BaseException) -> int:
    """Close the open sockets that aiocoap's frames in `exc`'s traceback hold; returns how many."""
    closed = 0
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_globals.get("__name__", "").startswith("aiocoap"):
            for value in frame.f_locals.values():
                if isinstance(value, socket.socket) and value.fileno() != -1:
                    value.close()
                    closed += 1
        tb = tb.tb_next
    return closed
