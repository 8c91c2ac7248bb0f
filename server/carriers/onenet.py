"""China Mobile OneNET (AT+MIPLCFG platform 0; manual §5.1, §5.2; platforms.md "OneNET").

Endpoint `IMEI;IMSI` (pattern 2), the auth code in CoAP option 63 (4.03 on a mismatch), string
PSKs, lifetime at most 24 h, a bootstrap server (`nbiotbt.heclouds.com`) in front of the access
server. For devices created with `obsv: true` the platform observes every registered object
instance, discovers each object and reads /3/0 ("subscriptions complete"); subscriptions are
cleared on re-registration and when the device goes offline (the server core drops an
endpoint's observations on both), and a notification for a token it no longer observes is
answered with Reset by the CoAP layer.

Monitor (manual §4.6 AT+MIPLCREATEEX `<flag>` bit 1 clear; platforms.md): the module answers
reads of 10290/0 itself with cell information. After each registration of a device created with
`obsv: true`, once its subscriptions are complete, the platform reads it and keeps the cell
information in `Device.attributes["cell"]` *(inferred: the manual does not say when the platform
reads it)*; a module without the monitor answers 4.04 and nothing is kept. The resource ids are *(inferred)*: 0 cell id, 1 RSRP, 2 SNR, 3 PCI,
4 EARFCN, all integers. The OMA registry gives 10290 to an unrelated object, so the values are
read as signed big-endian integers whatever type the server's model assigns (TLV carries
integers that way; an opaque or text value is converted back).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from lwm2m.node import Node, ObjectInstance, SingleResource
from lwm2m.numbers import CoapCode
from lwm2m.path import Path
from server.carriers.base import (
    ATTR_ACCESS_PSK,
    ATTR_CELL,
    ATTR_PSK,
    PATTERN_IMEI_IMSI,
    AutoObserve,
    CarrierCloud,
    CarrierProfile,
    CarrierRules,
    retry_busy,
)
from server.domain import Device
from server.errors import RequestFailed

MONITOR_OBJECT: Final = 10290
MONITOR_RESOURCES: Final[dict[int, str]] = {0: "cell_id", 1: "rsrp", 2: "snr", 3: "pci", 4: "earfcn"}

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
    monitor_object=MONITOR_OBJECT,
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

    async def device_facts(self, cloud: CarrierCloud, endpoint: str, device: Device) -> dict[str, Any]:
        """Read the monitor object 10290/0; {"cell": {...}} when the module has the monitor."""
        if not device.obsv:
            return {}
        try:
            node = await retry_busy(lambda: cloud.read(endpoint, Path(MONITOR_OBJECT, 0)))
        except RequestFailed as exc:
            if exc.code in (CoapCode.NOT_FOUND, CoapCode.METHOD_NOT_ALLOWED):
                return {}
            raise
        cell = cell_information(node) if isinstance(node, Node) else {}
        return {ATTR_CELL: cell} if cell else {}


def cell_information(node: Node) -> dict[str, int]:
    """{"cell_id": …, "rsrp": …, "snr": …, "pci": …, "earfcn": …} from a read of 10290/0."""
    if not isinstance(node, ObjectInstance):
        return {}
    cell: dict[str, int] = {}
    for resource_id, name in MONITOR_RESOURCES.items():
        resource = node.resources.get(resource_id)
        if isinstance(resource, SingleResource):
            value = _as_integer(resource.value)
            if value is not None:
                cell[name] = value
    return cell


def _as_integer(value: object) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            value = value.encode("utf-8")
    if isinstance(value, bytes) and 0 < len(value) <= 8:
        return int.from_bytes(value, "big", signed=True)
    return None
