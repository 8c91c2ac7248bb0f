"""China Mobile OneNET (AT+MIPLCFG platform 0; manual §5.1, §5.2; platforms.md "OneNET").

Endpoint `IMEI;IMSI` (pattern 2), the auth code in CoAP option 63 (4.03 on a mismatch), string
PSKs, lifetime at most 24 h, a bootstrap server (`nbiotbt.heclouds.com`) in front of the access
server. For devices created with `obsv: true` the platform observes every registered object
instance, discovers each object and reads /3/0 ("subscriptions complete"); subscriptions are
cleared on re-registration and when the device goes offline (the server core drops an
endpoint's observations on both), and a notification for a token it no longer observes is
answered with Reset by the CoAP layer. The module answers reads of the monitor object 10290/0
itself (cell information, manual §4.6 "monitor").
"""

from __future__ import annotations

from server.carriers.base import (
    ATTR_ACCESS_PSK,
    ATTR_PSK,
    PATTERN_IMEI_IMSI,
    AutoObserve,
    CarrierProfile,
    CarrierRules,
)
from server.services.provisioning import Device

ONENET_RULES = CarrierRules(
    name="onenet",
    platform=0,
    endpoint_patterns=(PATTERN_IMEI_IMSI,),
    checks_auth_code=True,
    psk_encodings=("string",),
    lifetime_range=(15, 86400),
    auto_observe=AutoObserve.INSTANCES,
    discover_and_read_device=True,
    has_bootstrap=True,
    monitor_object=10290,
)


class OneNetProfile(CarrierProfile):
    def __init__(self) -> None:
        super().__init__(ONENET_RULES)

    def psk_attribute(self, role: str) -> str:
        """The bootstrap server checks the PSK given at device creation; the access server the
        LwM2M-server PSK issued by the last bootstrap (or set through `accpsk`)."""
        return ATTR_PSK if role == "bootstrap" else ATTR_ACCESS_PSK

    def wants_auto_observe(self, device: Device | None) -> bool:
        return device is not None and device.obsv
