"""Any other LwM2M server (AT+MIPLCFG platform 10): the endpoint name is the module's
`<epname>`. The custom listener behaves like a plain LwM2M server and accepts any endpoint
(`requires_provisioning=False`) unless configured strict, in which case the endpoint must be a
provisioned device's endpoint name (or its IMEI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from lwm2m.numbers import CoapCode
from server.carriers.base import PATTERN_IMEI, CarrierProfile, CarrierRules, DeviceRegistry, Refusal
from server.domain import Device

CUSTOM_RULES = CarrierRules(
    name="custom",
    platform=10,
    endpoint_patterns=(PATTERN_IMEI,),
    requires_provisioning=False,
    psk_encodings=("string", "hex"),
)


class CustomProfile(CarrierProfile):
    def __init__(self, *, strict: bool = False) -> None:
        super().__init__(replace(CUSTOM_RULES, requires_provisioning=strict))

    @property
    def strict(self) -> bool:
        return self.rules.requires_provisioning

    def find_device(self, provisioning: DeviceRegistry, endpoint: str) -> Device | Refusal:
        device = provisioning.device_by_endpoint(endpoint)
        if device is not None and device.product_id is not None:
            return device
        return super().find_device(provisioning, endpoint)

    def admit(
        self,
        provisioning: DeviceRegistry,
        endpoint: str,
        options: Mapping[int, bytes],
        secure_identity: str | None,
    ) -> Device | Refusal | None:
        found = self.find_device(provisioning, endpoint)
        if isinstance(found, Refusal):
            return Refusal(CoapCode.FORBIDDEN, found.reason) if self.strict else None
        return found
