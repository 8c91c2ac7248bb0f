"""Sizes of one benchmark run and the function that runs the selected benchmarks in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.cloud_startup import bench_cloud_startup
from bench.cluster import bench_cluster
from bench.dtls import bench_dtls
from bench.fota import bench_fota
from bench.isolated import run_isolated
from bench.measure import Figure
from bench.memory import bench_memory
from bench.notifies import bench_notifies
from bench.reads import bench_reads
from bench.registrations import bench_registrations
from bench.rest import bench_rest
from testbed.gc_tuning import freeze_long_lived_objects

BENCHMARKS = (
    "registrations",
    "reads",
    "memory",
    "dtls",
    "modules",
    "notifies",
    "fleet",
    "rest",
    "cloud_startup",
    "fota",
    "cluster",
)


@dataclass(frozen=True, slots=True)
class Sizes:
    clients: int = 50
    registrations: int = 2000
    reads: int = 2000
    # Memory checkpoints: the server's RSS with 10,000 and then 100,000 registered endpoints.
    endpoints: tuple[int, ...] = (10_000, 100_000)
    sockets: int = 300
    handshakes: int = 200
    modules: int = 10_000
    module_interval: float = 10.0
    notifies: int = 10_000
    # Devices notifying at once: 2,000 notifies/s come from thousands of devices, each with at most
    # one confirmable notification in flight (NSTART = 1); 200 in a closed loop offer the server
    # enough concurrency that it, not the pacing of a few clients, sets the rate.
    notify_clients: int = 200
    fleet: int = 10_000
    fleet_interval: float = 10.0
    rest_requests: int = 2000
    rest_paced: int = 500
    cloud_startups: int = 3
    # Firmware update campaign: modules pulling a package of `fota_kib` KiB over CoAP.
    fota_devices: int = 1000
    fota_kib: int = 256
    fota_concurrency: int = 100
    # The cluster (bench.cluster): registrations and cross-node reads per measurement, fleet
    # devices and the seconds their notifications are counted.
    cluster_registrations: int = 2000
    cluster_reads: int = 2000
    cluster_fleet: int = 500
    cluster_window: float = 10.0


QUICK = Sizes(
    clients=20,
    registrations=50,
    reads=50,
    endpoints=(200,),
    sockets=20,
    handshakes=20,
    modules=50,
    module_interval=2.0,
    notifies=100,
    notify_clients=20,
    fleet=50,
    fleet_interval=2.0,
    rest_requests=100,
    rest_paced=100,
    cloud_startups=1,
    fota_devices=10,
    fota_kib=8,
    fota_concurrency=5,
    cluster_registrations=50,
    cluster_reads=50,
    cluster_fleet=20,
    cluster_window=2.0,
)


def _runners(sizes: Sizes) -> dict[str, Callable[[], Awaitable[list[Figure]]]]:
    return {
        "registrations": lambda: bench_registrations(sizes.clients, sizes.registrations),
        "reads": lambda: bench_reads(sizes.clients, sizes.reads),
        "memory": lambda: bench_memory(sizes.endpoints, sizes.sockets),
        "dtls": lambda: bench_dtls(sizes.clients, sizes.handshakes, sizes.reads),
        "modules": lambda: run_isolated("modules", sizes.modules, sizes.module_interval),
        "notifies": lambda: bench_notifies(sizes.notify_clients, sizes.notifies),
        "fleet": lambda: run_isolated("fleet", sizes.fleet, sizes.fleet_interval),
        "rest": lambda: bench_rest(sizes.clients, sizes.rest_requests, sizes.rest_paced),
        "cloud_startup": lambda: bench_cloud_startup(sizes.cloud_startups),
        "fota": lambda: bench_fota(sizes.fota_devices, sizes.fota_kib, sizes.fota_concurrency),
        "cluster": lambda: bench_cluster(
            sizes.clients,
            sizes.cluster_registrations,
            sizes.cluster_reads,
            sizes.cluster_fleet,
            sizes.cluster_window,
        ),
    }


async def run_benchmarks(sizes: Sizes, only: tuple[str, ...] = BENCHMARKS) -> list[Figure]:
    figures: list[Figure] = []
    runners = _runners(sizes)
    for name in BENCHMARKS:
        if name in only:
            # What earlier benchmarks left in this process (the load generators' sockets, results
            # of 100,000 registrations) must not cost this one a full garbage collection.
            freeze_long_lived_objects()
            figures += await runners[name]()
    return figures
