"""Every shipped flow (the seven of manual chapter 5, and the custom-platform flow) runs unchanged
as a scenario against the private cloud that `testbed up` composes: the carrier listeners on
ports 5683 / 5684 (here at loopback addresses of the test's own, `PrivateCloud`), the OneNET
bootstrap server and the HTTP API. The carrier host names of the scripts resolve through the
cloud's host map, the devices are provisioned through the HTTP API as a carrier console would,
and the `do` steps go through the HTTP API with the very actions `testbed scenario --api` uses.
One more test runs `testbed up` and `testbed scenario FLOW --api ...` as processes, for each of
the seven chapter-5 flows (the DTLS flows 5.2 and 5.4 change the device's PSK through the API in
their `do psk` step).

Each flow gets its own IMEI, so one cloud serves them all (its start is the slow part)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from emulator.scenarios import (
    Action,
    ModuleTransport,
    ScenarioResult,
    Script,
    flow_names,
    load_flow,
    run_scenario,
)
from server.carriers.base import ATTR_ACCESS_PSK
from server.settings import CARRIER_ADDRESSES
from testbed.testkit import PrivateCloud
from testbed.testkit.addresses import udp_ports_free
from testbed.testkit.module import make_imei, make_imsi
from tests.support import missing

TESTBED = [sys.executable, "-m", "testbed.cli"]


@dataclass(frozen=True, slots=True)
class Device:
    """What the platform holds for a flow before it runs (the manual's platform-side steps)."""

    carrier: str
    auth_code: str | None = None
    psk: str | None = None
    psk_encoding: str = "string"


DEVICES: dict[str, Device] = {
    "5.1-onenet": Device("onenet", auth_code="cmiot"),
    # The bootstrap-server PSK of the manual's POST /devices; the access PSK "abcdefge" is set by
    # the flow's own `do psk` step (PUT /api/v1/devices/{id}/psk, the effect of OneNET's POST
    # /nbiot/device/accpsk), after the bootstrap issued one.
    "5.2-onenet-dtls": Device("onenet", psk="1234abcd"),
    "5.3-ctwing": Device("ctwing"),
    # The string PSK of the first example; the flow's `do psk abcd1234 hex` gives the device the
    # hex PSK of the second example.
    "5.4-ctwing-dtls": Device("ctwing", psk="abcdefgh"),
    "5.5-yanfei": Device("yanfei"),
    "5.6-huawei": Device("huawei"),
    "5.7-huawei-dtls": Device("huawei", psk="abcd1234", psk_encoding="hex"),
    "custom": Device("custom"),  # the open listener admits any endpoint: nothing to provision
}


def test_every_shipped_flow_has_a_device_plan() -> None:
    # Which flows ship (the seven of manual chapter 5 and custom) is checked by the unit tests.
    assert set(DEVICES) == set(flow_names())


# --- the platform side, through the HTTP API --------------------------------------------------------


class Platform:
    """The cloud's HTTP API as an operator and a backend use it (admin key)."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.http = httpx.Client(base_url=base_url, headers={"api-key": api_key}, timeout=15.0)
        self.products: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def _ok(self, response: httpx.Response) -> Any:
        assert response.status_code < 400, f"{response.request.url.path}: {response.text}"
        return response.json()

    def product(self, carrier: str) -> str:
        if carrier not in self.products:
            body = {"name": f"{carrier} flows", "carrier": carrier}
            self.products[carrier] = str(self._ok(self.http.post("/api/v1/products", json=body))["id"])
        return self.products[carrier]

    def create_device(self, imei: str, imsi: str, device: Device) -> int:
        body = self.device_body(imei, imsi, device, device.psk, device.psk_encoding)
        return int(self._ok(self.http.post("/api/v1/devices", json=body))["id"])

    def device_body(
        self, imei: str, imsi: str, device: Device, psk: str | None, encoding: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"product_id": self.product(device.carrier), "imei": imei, "imsi": imsi}
        if device.auth_code:
            body["auth_code"] = device.auth_code
        if psk:
            body["psk"] = psk
            body["psk_encoding"] = encoding
        return body


def api_actions(cloud: PrivateCloud, device: str, script: Script) -> Any:
    """The platform actions of `testbed scenario --api URL --api-key KEY` (testbed/cli/api_actions.py); its
    `do psk` step (PUT /api/v1/devices/{id}/psk) sets the OneNET access PSK as POST
    /nbiot/device/accpsk does (§5.2) and the CTWing device PSK, text or hex (§5.4)."""
    from testbed.cli.api_actions import ApiActions

    assert cloud.api_url is not None
    return ApiActions(cloud.api_url, cloud.admin_key, device, script.timeout)


# --- running a flow ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateCloud]:
    directory = tmp_path_factory.mktemp("flows-cloud")
    with PrivateCloud(f"sqlite+aiosqlite:///{directory}/testbed.db") as started:
        assert started.api_url is not None, "the cloud has no HTTP API"
        yield started


@pytest.fixture(scope="module")
def platform(cloud: PrivateCloud) -> Iterator[Platform]:
    assert cloud.api_url is not None
    api = Platform(cloud.api_url, cloud.admin_key)
    yield api
    api.close()


@dataclass(slots=True)
class FlowRun:
    name: str
    imei: str
    imsi: str
    endpoint: str
    device_id: int | None
    result: ScenarioResult


def run_flow(cloud: PrivateCloud, platform: Platform, name: str) -> FlowRun:
    script = load_flow(name)
    plan = DEVICES[name]
    imei = make_imei()
    imsi = make_imsi(imei)
    device_id = platform.create_device(imei, imsi, plan) if plan.carrier != "custom" else None
    variables: dict[str, str] = {}
    if name == "custom":
        # The one variable set from outside: the script's default is the open listener of
        # `testbed up` (127.0.0.1:5683); the test cloud's is on an ephemeral port.
        host, port = cloud.coap_address
        variables["server"] = f"{host}:{port}"
    endpoint = script.variables.get("ep") or (f"{imei};{imsi}" if plan.carrier == "onenet" else imei)
    model = script.meta.get("model", "ML307R").split()[0]

    async def main() -> ScenarioResult:
        from emulator.runner import EmulatedModule

        module = EmulatedModule(
            model, imei=imei, imsi=imsi, hosts=cloud.hosts, request_timeout=script.timeout
        )
        module.hosts.default = cloud.default_host
        await module.start()
        # `testbed scenario` names the device by ${ep}, else by the IMEI.
        api = api_actions(cloud, script.variables.get("ep") or imei, script)
        actions: Mapping[str, Action] = api.actions()
        try:
            return await run_scenario(script, ModuleTransport(module), variables=variables, actions=actions)
        finally:
            await api.aclose()
            await module.stop()

    result: ScenarioResult = cloud.run(main(), timeout=120)
    return FlowRun(name, imei, imsi, endpoint, device_id, result)


def registrations(cloud: PrivateCloud, endpoint: str, kind: str = "registration.registered") -> list[Any]:
    return [e for e in cloud.events if e.kind == kind and e.endpoint == endpoint]


def stored(cloud: PrivateCloud, endpoint: str, path: str) -> list[Any]:
    """Values stored at `path` or below it (object 19 data is stored per resource instance)."""
    points = cloud.datapoints(endpoint)
    return [p.value for p in points if p.path == path or p.path.startswith(path + "/")]


# One server-side fact per flow, beyond the scenario passing.


def check_5_1(cloud: PrivateCloud, run: FlowRun) -> None:
    (registered,) = registrations(cloud, run.endpoint)
    assert registered.data["listener"] == "onenet", "registered at the access server after the bootstrap"
    assert "abcd" in stored(cloud, run.endpoint, "/3200/0/5750"), "the notify of the manual was stored"


def check_5_2(cloud: PrivateCloud, run: FlowRun) -> None:
    # Bootstrap access, direct access with the learned PSK, access with the API's PSK.
    assert [e.data["listener"] for e in registrations(cloud, run.endpoint)] == ["onenet"] * 3
    assert run.result.variables["learnedpsk"] != run.result.variables["accpsk"]
    assert run.device_id is not None
    device = cloud.server.provisioning.device(run.device_id)
    assert device is not None and device.attributes[ATTR_ACCESS_PSK] == "abcdefge"


def check_5_3(cloud: PrivateCloud, run: FlowRun) -> None:
    assert [e.data["listener"] for e in registrations(cloud, run.endpoint)] == ["ctwing"]
    # Value type 1 (string): the module sends the characters themselves as the opaque data.
    assert stored(cloud, run.endpoint, "/19/0/0") == [{"hex": b"003233343333".hex()}]


def check_5_4(cloud: PrivateCloud, run: FlowRun) -> None:
    # The string-PSK login and the hex-PSK login, both over DTLS at the CTWing listener.
    assert [e.data["listener"] for e in registrations(cloud, run.endpoint)] == ["ctwing"] * 2


def check_5_5(cloud: PrivateCloud, run: FlowRun) -> None:
    assert 50.8 in stored(cloud, run.endpoint, "/3300/0/5700"), "the notify of the manual was stored"


def check_5_6(cloud: PrivateCloud, run: FlowRun) -> None:
    assert [e.data["listener"] for e in registrations(cloud, run.endpoint)] == ["huawei"]
    assert {"hex": "0102"} in stored(cloud, run.endpoint, "/19/0/0"), "the uplink of the manual was stored"


def check_5_7(cloud: PrivateCloud, run: FlowRun) -> None:
    assert [e.data["listener"] for e in registrations(cloud, run.endpoint)] == ["huawei"]


def check_custom(cloud: PrivateCloud, run: FlowRun) -> None:
    assert [e.data["listener"] for e in registrations(cloud, run.endpoint)] == ["default"]
    assert 21.5 in stored(cloud, run.endpoint, "/3303/0/5700")


CHECKS: dict[str, Callable[[PrivateCloud, FlowRun], None]] = {
    "5.1-onenet": check_5_1,
    "5.2-onenet-dtls": check_5_2,
    "5.3-ctwing": check_5_3,
    "5.4-ctwing-dtls": check_5_4,
    "5.5-yanfei": check_5_5,
    "5.6-huawei": check_5_6,
    "5.7-huawei-dtls": check_5_7,
    "custom": check_custom,
}


@pytest.mark.parametrize("name", flow_names())
def test_shipped_flow_passes_against_the_private_cloud(
    cloud: PrivateCloud, platform: Platform, name: str
) -> None:
    run = run_flow(cloud, platform, name)
    run.result.raise_for_failure()
    # Every flow ends with AT+MIPLCLOSE: the registration is gone from the server.
    assert cloud.registration(run.endpoint) is None
    assert registrations(cloud, run.endpoint, "registration.deregistered"), "the logout reached the server"
    CHECKS[name](cloud, run)


# --- `testbed up` and `testbed scenario` as processes ------------------------------------------------


def free_port(kind: int) -> int:
    import socket

    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def testbed_up(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`testbed up` with its carrier listeners at their fixed addresses (127.0.1.x:5683/5684);
    yields (API base URL, API key). Skips when another testbed holds those addresses."""
    import socket

    taken = [a for _c, _r, a in CARRIER_ADDRESSES.values() if not udp_ports_free(a, (5683, 5684))]
    if taken:
        missing(f"the carrier addresses of `testbed up` are in use ({', '.join(taken)} :5683/:5684)")
    api_key = "flows-test-key"
    http_port = free_port(socket.SOCK_STREAM)
    env = {**os.environ, "COLUMNS": "200", "TESTBED_API_KEY": api_key}
    command = [
        *TESTBED,
        "up",
        "--port",
        str(free_port(socket.SOCK_DGRAM)),
        "--dtls-port",
        "0",
        "--http-port",
        str(http_port),
        "--fleet",
        "0",
        "--module-port-base",
        "0",
        "--quiet",
    ]
    process = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        output = "".join(lines)
        if process.poll() is not None and "in use" in output:
            missing(f"`testbed up` could not bind its addresses:\n{output}")
        assert "Press Ctrl-C to stop." in output, output
        for name, (_carrier, _role, address) in CARRIER_ADDRESSES.items():
            assert f"coap://{address}:5683" in output and f"({name})" in output, output
        yield f"http://127.0.0.1:{http_port}", api_key
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0 and "Traceback" not in rest, rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def run_testbed_scenario(flow: str, imei: str, imsi: str, base_url: str, api_key: str) -> str:
    """`testbed scenario FLOW --api ... --api-key ...` as a user runs it; its output, exit code 0."""
    command = [*TESTBED, "scenario", flow, "--imei", imei, "--imsi", imsi]
    command += ["--api", base_url, "--api-key", api_key, "--quiet"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=90, env={**os.environ, "COLUMNS": "200"}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"PASSED {flow}.txt" in result.stdout, result.stdout
    return result.stdout


# Registrations each chapter-5 flow makes: §5.2 bootstrap, direct and API-PSK access; §5.4 the
# string-PSK and the hex-PSK login; the others one login.
LOGINS: dict[str, int] = {
    "5.1-onenet": 1,
    "5.2-onenet-dtls": 3,
    "5.3-ctwing": 1,
    "5.4-ctwing-dtls": 2,
    "5.5-yanfei": 1,
    "5.6-huawei": 1,
    "5.7-huawei-dtls": 1,
}


def test_logins_cover_every_chapter_5_flow() -> None:
    assert set(LOGINS) == {name for name in flow_names() if name.startswith("5.")}


def test_testbed_scenario_runs_every_chapter_5_flow_against_testbed_up(testbed_up: tuple[str, str]) -> None:
    """Manual §5.1-§5.7 literally: `testbed up`, devices created through its HTTP API, then
    `testbed scenario FLOW --api ... --api-key ...` as a user runs it, for each of the seven
    flows; exit code 0 each time. In the DTLS flows the `do psk` step sets the OneNET access PSK
    (§5.2) and the CTWing hex PSK (§5.4) through the API, between the two parts of the flow."""
    base_url, api_key = testbed_up
    with httpx.Client(base_url=base_url, headers={"api-key": api_key}, timeout=15.0) as http:
        products: dict[str, str] = {}

        def provision(flow: str) -> tuple[str, str, int]:
            plan = DEVICES[flow]
            if plan.carrier not in products:
                product = http.post("/api/v1/products", json={"name": "flow", "carrier": plan.carrier})
                assert product.status_code == 200, product.text
                products[plan.carrier] = product.json()["id"]
            imei = make_imei()
            imsi = make_imsi(imei)
            body: dict[str, Any] = {"product_id": products[plan.carrier], "imei": imei, "imsi": imsi}
            if plan.auth_code:
                body["auth_code"] = plan.auth_code
            if plan.psk:
                body |= {"psk": plan.psk, "psk_encoding": plan.psk_encoding}
            device = http.post("/api/v1/devices", json=body)
            assert device.status_code == 200, device.text
            return imei, imsi, int(device.json()["id"])

        for flow, logins in LOGINS.items():
            imei, imsi, device_id = provision(flow)
            run_testbed_scenario(flow, imei, imsi, base_url, api_key)
            # The platform side of the flow happened in `testbed up`.
            events = http.get(f"/api/v1/devices/{device_id}/events", params={"limit": 1000}).json()
            registered = [e for e in events["items"] if e["kind"] == "registration.registered"]
            assert len(registered) == logins, (flow, events)
            if flow == "5.1-onenet":
                points = http.get(f"/api/v1/devices/{device_id}/datapoints").json()
                assert any(p["path"] == "/3200/0/5750" and p["value"] == "abcd" for p in points["items"]), (
                    points
                )
