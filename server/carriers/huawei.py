"""Huawei Cloud IoTDA (AT+MIPLCFG platform 3; manual §5.6, §5.7; platforms.md "Huawei").

Endpoint = node id (the IMEI), hex PSK with the node id as identity *(inferred)*, no bootstrap.
After a registration the platform observes /19/0/0 with Accept application/octet-stream; uplink
data comes as notifications of that observation; commands are `PUT /19/1/0` (octet-stream),
acknowledged by the module itself (2.04).
"""

from __future__ import annotations

from lwm2m.numbers import ContentFormat
from server.carriers.base import PATTERN_IMEI, AutoObserve, CarrierProfile, CarrierRules

HUAWEI_RULES = CarrierRules(
    name="huawei",
    platform=3,
    endpoint_patterns=(PATTERN_IMEI,),
    psk_encodings=("hex",),
    auto_observe=AutoObserve.APPDATA,
    appdata_accept=int(ContentFormat.OPAQUE),
)


class HuaweiProfile(CarrierProfile):
    def __init__(self) -> None:
        super().__init__(HUAWEI_RULES)
