"""The numbers of the OMA Firmware Update object (object 5, `lwm2m/model/builtin/5.xml`): its
resources, the State values and the Update Result values with their meaning in words, as the
object definition gives them. Shared by the emulated module and the server's update tasks."""

from __future__ import annotations

from enum import IntEnum
from typing import Final

OBJECT_ID: Final = 5


class Resource(IntEnum):
    PACKAGE = 0
    PACKAGE_URI = 1
    UPDATE = 2
    STATE = 3
    UPDATE_RESULT = 5
    PKG_NAME = 6
    PKG_VERSION = 7
    PROTOCOL_SUPPORT = 8
    DELIVERY_METHOD = 9
    CANCEL = 10


class State(IntEnum):
    IDLE = 0
    DOWNLOADING = 1
    DOWNLOADED = 2
    UPDATING = 3


class UpdateResult(IntEnum):
    INITIAL = 0
    SUCCESS = 1
    NOT_ENOUGH_FLASH = 2
    OUT_OF_RAM = 3
    CONNECTION_LOST = 4
    INTEGRITY_FAILURE = 5
    UNSUPPORTED_PACKAGE = 6
    INVALID_URI = 7
    UPDATE_FAILED = 8
    UNSUPPORTED_PROTOCOL = 9
    CANCELLED = 10
    DEFERRED = 11


# Resource 5's description, value by value.
UPDATE_RESULT_MEANING: Final[dict[int, str]] = {
    0: "initial value",
    1: "firmware updated successfully",
    2: "not enough flash memory for the new firmware package",
    3: "out of RAM during downloading process",
    4: "connection lost during downloading process",
    5: "integrity check failure for new downloaded package",
    6: "unsupported package type",
    7: "invalid URI",
    8: "firmware update failed",
    9: "unsupported protocol",
    10: "firmware update cancelled",
    11: "firmware update deferred",
}

# Resource 8 (Firmware Update Protocol Support) values.
PROTOCOL_COAP, PROTOCOL_COAPS, PROTOCOL_HTTP, PROTOCOL_HTTPS = 0, 1, 2, 3
# Resource 9 (Firmware Update Delivery Method): 2 = both pull and push.
DELIVERY_BOTH: Final = 2


def meaning(result: int) -> str:
    return UPDATE_RESULT_MEANING.get(result, f"update result {result}")
