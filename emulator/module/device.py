"""The LwM2M device instance behind `<ref>` 0 (manual §3.1-§3.5, §4.1, §4.6): configuration,
objects, resource lists, and what the module answers by itself (Device object /3/0, OneNET
monitor object /10290/0).

The manual allows one device instance ("模组仅支持一路设备接入，故其设备实例ID恒为0", §4.6 note).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from emulator.module.values import AtType
from lwm2m.node import ObjectInstance, SingleResource
from lwm2m.numbers import ResourceType
from lwm2m.path import Path

REF: Final = 0
DEVICE_OBJECT: Final = 3
MONITOR_OBJECT: Final = 10290

# AT+MIPLCFG "platform" numbers (manual §4.1).
ONENET, CTWING, YANFEI, HUAWEI, CUSTOM = 0, 1, 2, 3, 10
# <pattern> 0 = the platform's default pattern (manual §4.1).
DEFAULT_PATTERN: Final[dict[int, int]] = {ONENET: 2, CTWING: 1, YANFEI: 1, HUAWEI: 1, CUSTOM: 1}
BINDINGS: Final[dict[int, str | None]] = {0: None, 1: "U", 2: "UQ"}
# Downlink paths the module acknowledges itself (manual §5.3, §5.6: "obj 19 下行自动回复").
AUTO_ACK_WRITES: Final[dict[int, frozenset[Path]]] = {
    CTWING: frozenset({Path(19, 1, 0)}),
    HUAWEI: frozenset({Path(19, 1, 0)}),
}


# How +MIPLWRITE prints opaque data written to a resource whose type the MCU never declared (by
# AT+MIPLNOTIFY or AT+MIPLREADRSP), per platform. The rule is the §3.12 note (manual line 717):
# "未申明过类型的值将默认以16进制字符串类型打印" -> type 6, hex string; the Huawei downlink of §5.6
# (line 1812) prints it so: `+MIPLWRITE: 0,23550,19,1,0,6,8,05010203,0`. The CTWing downlink of
# §5.3 (line 1635) prints the platform's opaque data as type 2 instead:
# `+MIPLWRITE: 0,24265,19,1,0,2,8,34353637,0`, so CTWing keeps the opaque type. Other undeclared
# values (text, numbers) print as hex strings on every platform.
UNDECLARED_OPAQUE_TYPE: Final[dict[int, AtType]] = {CTWING: AtType.OPAQUE}
DEFAULT_UNDECLARED_TYPE: Final = AtType.HEX_STRING


class State(Enum):
    CREATED = "created"
    OPENING = "opening"
    REGISTERED = "registered"
    CLOSING = "closing"


@dataclass(slots=True)
class ObjectEntry:
    object_id: int
    instance_count: int
    instances: tuple[int, ...]  # available ids from the bitmap
    attributes: int = 0
    actions: int = 0


@dataclass(slots=True)
class Device:
    host: str
    port: int
    bootstrap: bool
    dtls: bool
    auth_code: str | None = None
    psk: bytes | None = None
    psk_text: str | None = None
    psk_identity: bytes | None = None
    monitor: bool = False
    platform: int = ONENET
    pattern: int = 0
    epname: str | None = None
    binding_mode: int = 0
    nnmi: int = 0
    nsmi: int = 0
    auto_update: bool = False
    dtls_nat: int = 120
    user_data: dict[str, str] = field(default_factory=dict)
    objects: dict[int, ObjectEntry] = field(default_factory=dict)
    resource_lists: dict[int, tuple[int, ...]] = field(default_factory=dict)
    declared: dict[tuple[int, int, int], AtType] = field(default_factory=dict)
    state: State = State.CREATED

    def endpoint(self, imei: str, imsi: str) -> str:
        if self.platform == CUSTOM and self.epname:
            return self.epname
        pattern = self.pattern or DEFAULT_PATTERN.get(self.platform, 1)
        return {
            1: imei,
            2: f"{imei};{imsi}",
            3: f"urn:imei:{imei}",
            4: f"urn:imei-imsi:{imei}-{imsi}",
        }[pattern]

    def has_instance(self, object_id: int, instance_id: int | None) -> bool:
        entry = self.objects.get(object_id)
        if entry is None:
            return False
        return instance_id is None or instance_id in entry.instances

    def object_links(self, builtin: tuple[int, ...] = ()) -> tuple[Path, ...]:
        """The instances to register: /3/0 and the `builtin` objects' instance 0 (the module's
        own, e.g. /5/0 of FOTA) unless the MCU added the object, then the MCU's objects."""
        links: list[Path] = []
        for object_id in (DEVICE_OBJECT, *builtin):
            if object_id not in self.objects:
                links.append(Path(object_id, 0))
        for object_id in sorted(self.objects):
            entry = self.objects[object_id]
            if entry.instances:
                links.extend(Path(object_id, i) for i in entry.instances)
            else:
                links.append(Path(object_id))
        return tuple(links)


def device_object(manufacturer: str, model: str, serial: str, firmware: str, binding: str) -> ObjectInstance:
    """/3/0 as the module answers it when the MCU did not add object 3 (manual §3.3 note: FOTA
    uses 3/0, 4/0, 5/0)."""
    values: dict[int, tuple[str | int, ResourceType]] = {
        0: (manufacturer, ResourceType.STRING),
        1: (model, ResourceType.STRING),
        2: (serial, ResourceType.STRING),
        3: (firmware, ResourceType.STRING),
        16: (binding, ResourceType.STRING),
    }
    return ObjectInstance(0, {rid: SingleResource(rid, v, t) for rid, (v, t) in values.items()})


def monitor_object(cell_id: int, rsrp: int, snr: int, pci: int, earfcn: int) -> ObjectInstance:
    """/10290/0, OneNET's cell monitor (platforms.md): *(inferred)* resource ids 0..4."""
    values = {0: cell_id, 1: rsrp, 2: snr, 3: pci, 4: earfcn}
    return ObjectInstance(0, {rid: SingleResource(rid, v, ResourceType.INTEGER) for rid, v in values.items()})
