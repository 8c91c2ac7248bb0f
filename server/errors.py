"""Errors of the server's Python API.

    ServerError
    ├── UnknownEndpoint        no registration for that endpoint
    ├── DeviceSleeping         queue-mode device asleep and the caller did not want queueing
    ├── DeviceTimeout          no answer within the timeout (retransmissions exhausted)
    ├── DeviceUnreachable      the network said no (ICMP error, transport gone)
    ├── RequestFailed          the device answered with an error code (carries it)
    ├── UndecodableAnswer      the device answered with something that does not answer the
    │                          request, or in a format the server cannot decode (says which)
    └── BadArgument            the request itself is invalid (path, value, attribute)

The REST API maps these to HTTP / OneNET errno values in one place.
"""

from __future__ import annotations

from lwm2m.numbers import CoapCode


class ServerError(Exception):
    """Base of the server's Python API errors."""


class UnknownEndpoint(ServerError, LookupError):
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"no registration for endpoint {endpoint!r}")


class DeviceSleeping(ServerError):
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"{endpoint!r} is a queue-mode device and is asleep")


class DeviceTimeout(ServerError, TimeoutError):
    pass


class DeviceUnreachable(ServerError, ConnectionError):
    pass


class RequestFailed(ServerError):
    def __init__(self, code: int, detail: str = "") -> None:
        self.code = code
        try:
            name = CoapCode(code).dotted
        except ValueError:
            name = f"{code >> 5}.{code & 0x1F:02d}"
        self.dotted = name
        super().__init__(f"device answered {name}{': ' + detail if detail else ''}")


class UndecodableAnswer(ServerError):
    """A success answer whose payload does not answer the request (another path, another kind of
    node, malformed) or comes in a content format the server cannot decode."""


class BadArgument(ServerError, ValueError):
    pass


class UnknownItem(ServerError, LookupError):
    """A stored item (a firmware package, an update task) that does not exist, or one the caller
    may not see."""


class ItemInUse(ServerError):
    """An item that running work still uses (a firmware package of an unfinished task)."""
