"""Render figures as a rich table and write them as JSON (latest.json plus a timestamped copy)."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.measure import Figure

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def render(figures: list[Figure], console: Console) -> None:
    table = Table(title="lwm2m-testbed benchmark")
    for column in ("Benchmark", "Figure", "Value", "Ceiling", "Ratio", "Target", "Met", "Latency / notes"):
        table.add_column(column, justify="right" if column in {"Value", "Ceiling", "Ratio"} else "left")
    for f in figures:
        met = "—" if f.target_met is None else ("yes" if f.target_met else "NO")
        ratio = "—" if f.ratio is None else f"{f.ratio:.2f}"
        table.add_row(
            f.benchmark,
            f.name,
            f"{_num(f.value)} {f.unit}",
            "—" if f.ceiling is None else f"{_num(f.ceiling)} {f.unit}",
            ratio,
            f.target or "—",
            met,
            _notes(f),
        )
    console.print(table)


def _notes(f: Figure) -> str:
    if "latency" in f.details:
        return str(f.details["latency"])
    load = f.details.get("server") or f.details.get("secure") or f.details.get("handshakes")
    if f.benchmark == "memory" and "per_endpoint_bytes" in f.details:
        load = f.details["register_load"]
    if isinstance(load, dict):
        text = f"p50 {load['p50_ms']:.1f} ms / p99 {load['p99_ms']:.1f} ms"
        return text + (f", {load['errors']} errors" if load["errors"] else "")
    return ""


def document(figures: list[Figure], options: dict[str, Any], elapsed: float) -> dict[str, Any]:
    return {
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "options": options,
        "elapsed_s": round(elapsed, 2),
        "figures": [f.as_json() for f in figures],
    }


def write(doc: dict[str, Any], name: str, directory: Path = RESULTS_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    paths = [directory / f"{name}.json", directory / f"{name}-{stamp}.json"]
    for path in paths:
        path.write_text(text)
    return paths
