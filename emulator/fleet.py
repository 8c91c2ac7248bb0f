"""A fleet of emulated LwM2M devices in one process, for demos and load.

Each device is a real `Lwm2mClient` on its own UDP socket with an `ObjectTreeHandler` holding a
Device object and a few IPSO sensors; a sensor behaviour moves the values on a random walk every
`interval` seconds, so that observed resources produce notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from emulator.client.client import ClientError, Lwm2mClient
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model import ModelRegistry
from lwm2m.model.builtin import builtin_registry

log = logging.getLogger(__name__)


# Endpoint names of fleets started by a user: this TAC-like start, a run id, the device index.
FLEET_START = "86997504"


def run_prefix(count: int, run_id: int | None = None) -> str:
    """The endpoint-name prefix of one fleet run of `count` devices: `FLEET_START`, then the run id
    (random when None) in the digits the indexes leave free of 15, so that two runs, the demo's
    devices (8699750398…, 8699750399…) and the manual's example IMEI (869975030000461) never
    share a name. `endpoint_name` pads the index to the rest."""
    width = len(str(max(count - 1, 0)))
    room = max(15 - len(FLEET_START) - width, 0)
    if room == 0:
        return FLEET_START
    run = secrets.randbelow(10**room) if run_id is None else run_id % 10**room
    return f"{FLEET_START}{run:0{room}d}"


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """A numeric resource that drifts: `path` moves by at most `step` within [low, high]."""

    path: str
    start: float
    step: float
    low: float
    high: float


DEFAULT_SENSORS = (
    SensorSpec("/3303/0/5700", 21.0, 0.5, -20.0, 60.0),
    SensorSpec("/3304/0/5700", 45.0, 1.5, 0.0, 100.0),
)


def build_device_tree(
    model: ModelRegistry, imei: str, manufacturer: str = "lwm2m-testbed"
) -> ObjectTreeHandler:
    tree = ObjectTreeHandler(model)
    tree.add_instance(1, 0, {0: 1, 1: 300, 2: 1, 3: 600, 6: False, 7: "U"})
    tree.add_instance(3, 0, {0: manufacturer, 1: "emulated", 2: imei, 3: "1.0", 9: 100, 11: {0: 0}, 16: "U"})
    tree.add_instance(3303, 0, {5700: 21.0, 5701: "Cel", 5601: 21.0, 5602: 21.0})
    tree.add_instance(3304, 0, {5700: 45.0, 5701: "%RH"})
    return tree


@dataclass
class FleetDevice:
    endpoint: str
    client: Lwm2mClient
    tree: ObjectTreeHandler
    values: dict[str, float] = field(default_factory=dict)


class Fleet:
    def __init__(
        self,
        server: tuple[str, int],
        count: int,
        *,
        prefix: str = "86997503",
        lifetime: int = 300,
        interval: float = 10.0,
        sensors: tuple[SensorSpec, ...] = DEFAULT_SENSORS,
        model: ModelRegistry | None = None,
        seed: int | None = None,
        first: int = 0,
    ) -> None:
        self.server = server
        self.count = count
        # Index of the first device (a fleet spread over processes gives each one a range).
        self.first = first
        self.prefix = prefix
        self.lifetime = lifetime
        self.interval = interval
        self.sensors = sensors
        self.model = model or builtin_registry()
        self.devices: list[FleetDevice] = []
        self._random = random.Random(seed)
        self._task: asyncio.Task[None] | None = None

    def endpoint_name(self, index: int) -> str:
        """IMEI-like endpoint names: the prefix padded to 15 digits."""
        return f"{self.prefix}{index:0{15 - len(self.prefix)}d}"

    async def start(self, progress: Callable[[int], None] | None = None) -> None:
        for index in range(self.first, self.first + self.count):
            endpoint = self.endpoint_name(index)
            tree = build_device_tree(self.model, endpoint)
            client = Lwm2mClient(
                ClientSettings(
                    endpoint=endpoint,
                    server_host=self.server[0],
                    server_port=self.server[1],
                    lifetime=self.lifetime,
                    object_links=tree.object_links,
                    auto_update=True,
                ),
                tree,
                self.model,
            )
            await client.start()
            device = FleetDevice(endpoint, client, tree, {s.path: s.start for s in self.sensors})
            self.devices.append(device)
            try:
                await client.register()
            except ClientError as exc:
                log.warning("%s could not register: %s", endpoint, exc)
            if progress is not None:
                progress(index + 1 - self.first)
        self._task = asyncio.create_task(self._drift_forever(), name="fleet-sensors")

    def step(self) -> None:
        """Move every sensor value once (random walk within its bounds)."""
        for device in self.devices:
            for spec in self.sensors:
                value = device.values[spec.path] + self._random.uniform(-spec.step, spec.step)
                value = round(min(spec.high, max(spec.low, value)), 2)
                device.values[spec.path] = value
                device.tree.set_value(spec.path, value)

    async def _drift_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.step()
            except Exception:
                log.exception("sensor step failed")

    async def stop(self, deregister: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for device in self.devices:
            if deregister and device.client.registered:
                with contextlib.suppress(ClientError):
                    await device.client.deregister()
            await device.client.stop()
        self.devices.clear()
