"""China Unicom Yanfei DMP (AT+MIPLCFG platform 2; manual §5.5; platforms.md "Yanfei").

Endpoint IMEI, no bootstrap, DTLS rules unknown (plain only). The platform observes the
registered IPSO object instances (the manual's flow: `+MIPLOBSERVE: 0,<mid>,1,3300,0,-1`), then
reads and writes them.
"""

from __future__ import annotations

from server.carriers.base import PATTERN_IMEI, AutoObserve, CarrierProfile, CarrierRules

YANFEI_RULES = CarrierRules(
    name="yanfei",
    platform=2,
    endpoint_patterns=(PATTERN_IMEI,),
    psk_encodings=("string",),
    auto_observe=AutoObserve.INSTANCES,
)


class YanfeiProfile(CarrierProfile):
    def __init__(self) -> None:
        super().__init__(YANFEI_RULES)
