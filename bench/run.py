"""Sizes of one benchmark run and the function that runs the selected benchmarks in order."""

from __future__ import annotations

from dataclasses import dataclass

from bench.dtls import bench_dtls
from bench.measure import Figure
from bench.memory import bench_memory
from bench.reads import bench_reads
from bench.registrations import bench_registrations

BENCHMARKS = ("registrations", "reads", "memory", "dtls")


@dataclass(frozen=True, slots=True)
class Sizes:
    clients: int = 50
    registrations: int = 2000
    reads: int = 2000
    endpoints: int = 10_000
    sockets: int = 300
    handshakes: int = 200


QUICK = Sizes(clients=20, registrations=50, reads=50, endpoints=200, sockets=20, handshakes=20)


async def run_benchmarks(sizes: Sizes, only: tuple[str, ...] = BENCHMARKS) -> list[Figure]:
    figures: list[Figure] = []
    if "registrations" in only:
        figures += await bench_registrations(sizes.clients, sizes.registrations)
    if "reads" in only:
        figures += await bench_reads(sizes.clients, sizes.reads)
    if "memory" in only:
        figures += await bench_memory(sizes.endpoints, sizes.sockets)
    if "dtls" in only:
        figures += await bench_dtls(sizes.clients, sizes.handshakes, sizes.reads)
    return figures
