"""`python -m bench [--quick] [--only registrations,reads,memory,dtls,modules,notifies,fleet,rest,cloud_startup,fota,cluster]
[--name latest]`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time

from rich.console import Console

from bench.report import document, render, write
from bench.run import BENCHMARKS, QUICK, Sizes, run_benchmarks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--name", default="latest", help="results file name (bench/results/<name>.json)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 50)")
    parser.add_argument(
        "--endpoints",
        help="endpoint counts at which the memory benchmark measures, comma-separated (default 10000,100000)",
    )
    parser.add_argument("--modules", type=int, help="AT modules for the modules benchmark (default 10000)")
    parser.add_argument("--notifies", type=int, help="notifies for the notifies benchmark (default 10000)")
    parser.add_argument(
        "--notify-clients", type=int, help="devices notifying at once in the notifies benchmark (default 200)"
    )
    parser.add_argument("--fleet", type=int, help="LwM2M devices for the fleet benchmark (default 10000)")
    parser.add_argument("--fota", type=int, help="modules updated in the fota benchmark (default 1000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    sizes = QUICK if args.quick else Sizes()
    if args.clients:
        sizes = dataclasses.replace(sizes, clients=args.clients)
    if args.endpoints:
        counts = tuple(int(count) for count in args.endpoints.split(",") if count.strip())
        sizes = dataclasses.replace(sizes, endpoints=counts)
    if args.modules:
        sizes = dataclasses.replace(sizes, modules=args.modules)
    if args.notifies:
        sizes = dataclasses.replace(sizes, notifies=args.notifies)
    if args.notify_clients:
        sizes = dataclasses.replace(sizes, notify_clients=args.notify_clients)
    if args.fleet:
        sizes = dataclasses.replace(sizes, fleet=args.fleet)
    if args.fota:
        sizes = dataclasses.replace(sizes, fota_devices=args.fota)
    console = Console(width=170)
    started = time.perf_counter()
    figures = asyncio.run(run_benchmarks(sizes, only))
    elapsed = time.perf_counter() - started
    render(figures, console)
    options = {"only": list(only), "sizes": dataclasses.asdict(sizes)}
    paths = write(document(figures, options, elapsed), args.name)
    console.print(f"{elapsed:.0f} s; written to {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
