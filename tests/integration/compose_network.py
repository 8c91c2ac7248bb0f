"""Run inside a fresh network namespace by test_compose_routes.py: the namespace stands in for the
compose network. /etc/hosts (bind-mounted over) maps the server container's address and its
network aliases, the way the compose network's DNS does; the server runs with the compose
service's environment and command; emulated modules with the compose `module` service's
environment follow the manual's login for each carrier by its host name.

argv: a JSON object {"command": the server's shell command, "environment": its environment,
"module_environment": the module service's environment, "server_name": the name the API is
reached by, "logins": [{"carrier", "model", "imei", "lines", "auth_code"}]}. Prints one JSON line
per login: {"carrier", "events": the +MIPLEVENT codes seen, "listener": the listener the
registration arrived on (from the API)}, then "done".
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import httpx

from emulator.runner import EmulatedModule


def wait_http(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s")


async def login(api: httpx.AsyncClient, spec: dict[str, Any], hosts: Any) -> dict[str, Any]:
    products = (await api.get("/api/v1/products")).json()["items"]
    product = next(p for p in products if p["carrier"] == spec["carrier"])
    created = await api.post(
        "/api/v1/devices",
        json={
            "product_id": product["id"],
            "imei": spec["imei"],
            "imsi": spec["imsi"],
            "auth_code": spec.get("auth_code"),
        },
    )
    created.raise_for_status()
    device_id = created.json()["id"]
    module = EmulatedModule(
        spec["model"], imei=spec["imei"], imsi=spec["imsi"], hosts=hosts, request_timeout=5.0
    )
    await module.start()
    events: list[str] = []
    try:
        for line in spec["lines"]:
            module.feed(line.encode() + b"\r")
            await module.expect(r"\r\n(OK|ERROR|\+CIS ERROR: \d+)\r\n", timeout=10)
        try:
            await module.expect(r"\+MIPLEVENT: 0,(6|3|5|7|8|13)\r\n", timeout=20)
        except TimeoutError:
            pass
        events = re.findall(r"\+MIPLEVENT: 0,(\d+)", module.transcript.decode(errors="replace"))
    finally:
        await module.stop()
    device = (await api.get(f"/api/v1/devices/{device_id}")).json()
    registration = device.get("registration") or {}
    return {"carrier": spec["carrier"], "events": events, "listener": registration.get("listener")}


async def main(config: dict[str, Any]) -> None:
    module_env = config["module_environment"]
    hosts = None
    if module_env.get("TESTBED_CARRIER_PORTS") in ("1", "true", "yes"):
        from emulator.carrier_ports import port_routes

        hosts = port_routes()
    base = f"http://{config['server_name']}:{config['environment']['TESTBED_HTTP_PORT']}"
    headers = {"api-key": config["environment"]["TESTBED_API_KEY"]}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as api:
        outcomes = await asyncio.gather(*(login(api, spec, hosts) for spec in config["logins"]))
        hosted = await hosted_modules(api)
    for outcome in [*outcomes, hosted]:
        print(json.dumps(outcome), flush=True)


async def hosted_modules(api: httpx.AsyncClient, timeout: float = 20.0) -> dict[str, Any]:
    """The modules `testbed up` hosts in the server container: {"hosted": [[carrier, the
    listener its registration arrived on]]} once every one has registered (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for module in (await api.get("/api/v1/modules")).json()["items"]:
            listing = (
                await api.get("/api/v1/devices", params={"q": module["endpoint"] or module["imei"]})
            ).json()
            registration = next((d["registration"] for d in listing["items"] if d["registration"]), None)
            found.append([module["carrier"], registration and registration["listener"]])
        if all(listener for _carrier, listener in found) or time.monotonic() > deadline:
            return {"hosted": found}
        await asyncio.sleep(0.2)


def run() -> None:
    config = json.loads(sys.argv[1])
    env = {**os.environ, **config["environment"]}
    server = subprocess.Popen(["sh", "-c", config["command"]], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_http(f"http://{config['server_name']}:{config['environment']['TESTBED_HTTP_PORT']}/", server)
        asyncio.run(main(config))
        print("done", flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    run()
