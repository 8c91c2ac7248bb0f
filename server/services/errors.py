"""The service errors, where the services, the API and the cluster have always imported them
from. The classes live in `server.errors`, below the services, so that the carrier rules (which
the services use) can raise and catch them too."""

from server.errors import (
    BadArgument,
    DeviceSleeping,
    DeviceTimeout,
    DeviceUnreachable,
    ItemInUse,
    RequestFailed,
    ServerError,
    UndecodableAnswer,
    UnknownEndpoint,
    UnknownItem,
)

__all__ = [
    "BadArgument",
    "DeviceSleeping",
    "DeviceTimeout",
    "DeviceUnreachable",
    "ItemInUse",
    "RequestFailed",
    "ServerError",
    "UndecodableAnswer",
    "UnknownEndpoint",
    "UnknownItem",
]
