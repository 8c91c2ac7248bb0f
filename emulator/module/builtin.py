"""The objects the module answers itself: Device (/3/0), Firmware Update (/5/0, emulator.module.fota)
and OneNET's monitor object (/10290/0), unless the MCU added the object with AT+MIPLADDOBJ
(manual §3.3 note: "FOTA功能会默认使用3/0, 4/0, 5/0资源的读、写、执行操作").

Object 5's writes and executes go to `FirmwareUpdate`; its state changes are notified to the
server's observers of /5, /5/0 and its resources.
"""

from __future__ import annotations

from emulator.module.core import ModuleCore, select
from emulator.module.device import (
    BINDINGS,
    DEVICE_OBJECT,
    MONITOR_OBJECT,
    ONENET,
    Device,
    device_object,
    monitor_object,
)
from emulator.module.fota import PackageSource
from emulator.module.ports import Notification
from lwm2m.firmware_update import OBJECT_ID as FIRMWARE_OBJECT
from lwm2m.node import Node, iter_values
from lwm2m.numbers import CoapCode
from lwm2m.path import Path


class BuiltinObjects:
    """Answers for the module's own objects, read from the shared state."""

    def __init__(self, core: ModuleCore) -> None:
        self._core = core

    def node(self, path: Path) -> Node | None:
        """The content of `path` when it is one of the module's own objects, else None."""
        core = self._core
        device = core.device
        if device is None:
            return None
        if path.object_id == DEVICE_OBJECT and DEVICE_OBJECT not in device.objects:
            instance = device_object(
                core.caps.manufacturer,
                core.caps.name,
                core.identity.imei,
                core.identity.revision or core.caps.revision,
                BINDINGS[device.binding_mode] or "U",
            )
        elif (
            path.object_id == FIRMWARE_OBJECT
            and core.fota is not None
            and FIRMWARE_OBJECT not in device.objects
        ):
            instance = core.fota.instance()
        elif path.object_id == MONITOR_OBJECT and device.monitor and device.platform == ONENET:
            n = core.network
            instance = monitor_object(n.cell_id, n.rsrp, n.snr, n.pci, n.earfcn)
        else:
            return None
        return select(instance, path)

    def object_ids(self) -> tuple[int, ...]:
        """The module's own objects listed in Register besides the MCU's (object 5)."""
        return (FIRMWARE_OBJECT,) if self._core.fota is not None else ()

    def is_fota(self, device: Device, path: Path) -> bool:
        return (
            path.object_id == FIRMWARE_OBJECT
            and self._core.fota is not None
            and FIRMWARE_OBJECT not in device.objects
        )

    def fota_write(self, path: Path, node: Node) -> CoapCode:
        """Writes of /5/0/0 (push) and /5/0/1 (the package URI), answered by the module."""
        fota = self._core.fota
        assert fota is not None
        if path.instance_id not in (None, 0):
            return CoapCode.NOT_FOUND
        values = list(iter_values(node, path))
        if not values:
            return CoapCode.BAD_REQUEST
        code = CoapCode.CHANGED
        for vpath, value, _rtype in values:
            if vpath.resource_id is None:
                return CoapCode.BAD_REQUEST
            code = fota.write(vpath.resource_id, value)
            if not code.is_success:
                return code
        return code

    def fota_execute(self, path: Path) -> CoapCode:
        fota = self._core.fota
        assert fota is not None and path.resource_id is not None
        return fota.execute(path.resource_id) if path.instance_id == 0 else CoapCode.NOT_FOUND

    def fota_source(self) -> PackageSource | None:
        client = self._core.client
        return client if client is not None and hasattr(client, "fetch_block") else None  # type: ignore[return-value]

    def fota_changed(self) -> None:
        """State or Update Result changed: notify the observers of /5, /5/0 and its resources."""
        core = self._core
        client, fota = core.client, core.fota
        if client is None or fota is None or core.registered() is None:
            return
        instance = fota.instance()
        for observation_id, path in list(core.builtin_observations.items()):
            if path.object_id != FIRMWARE_OBJECT:
                continue
            node = select(instance, path)
            if node is not None:
                client.notify(Notification(observation_id, path, node, confirmable=False))
