"""China Telecom CTWing (AT+MIPLCFG platform 1; manual §5.3, §5.4; platforms.md "CTWing").

Endpoint IMEI (patterns 1, 3 `urn:imei:` and 4 `urn:imei-imsi:`), PSK as string or hex with the
IMEI as identity, no bootstrap. Application data travels in object 19: the platform observes
/19/0/0 after a registration (the module prints `+MIPLOBSERVE: 0,<mid>,1,19,0,0`), uplink
notifies on it are application messages, and downlink writes to /19/1/0 are acknowledged by the
module itself.
"""

from __future__ import annotations

from server.carriers.base import (
    PATTERN_IMEI,
    PATTERN_URN_IMEI,
    PATTERN_URN_IMEI_IMSI,
    AutoObserve,
    CarrierProfile,
    CarrierRules,
)

CTWING_RULES = CarrierRules(
    name="ctwing",
    platform=1,
    endpoint_patterns=(PATTERN_IMEI, PATTERN_URN_IMEI, PATTERN_URN_IMEI_IMSI),
    psk_encodings=("string", "hex"),
    auto_observe=AutoObserve.APPDATA,
)


class CtwingProfile(CarrierProfile):
    def __init__(self) -> None:
        super().__init__(CTWING_RULES)
