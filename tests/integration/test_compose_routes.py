"""docker compose routes each carrier to its listener, shown without a Docker engine: a fresh
network namespace stands in for the compose network. The server container's address is an
address of the namespace, /etc/hosts (bind-mounted inside the namespace only) resolves the
server's network aliases from docker-compose.yml to it as the compose network's DNS does, the
server runs the compose service's command with its environment, and an emulated module with the
`module` service's environment follows the manual's login (§5.1, §5.3, §5.5, §5.6) with each
carrier's host name. Each login must end on that carrier's listener (issue 16: in compose every
carrier host name reached only the open listener and §5.1 ended in +MIPLEVENT: 0,3)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import missing

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("compose_network.py")
CONTAINER_ADDRESS = "10.89.0.2"  # the server container's address on the compose network
API_KEY = "compose-routes-admin-key"

LOGINS: list[dict[str, Any]] = [
    {  # §5.1: bootstrap at nbiotbt.heclouds.com, which sends the module to OneNET access
        "carrier": "onenet",
        "listener": "onenet",
        "model": "ML307R",
        "imei": "869975037700001",
        "imsi": "460041234599001",
        "auth_code": "cmiot",
        "lines": [
            'AT+MIPLCREATEEX="nbiotbt.heclouds.com:5683",1,"cmiot"',
            'AT+MIPLADDOBJ=0,3200,1,"1",0,1',
            'AT+MIPLDISCOVERRSP=0,3200,1,4,"5750"',
            "AT+MIPLOPEN=0,3000,30",
        ],
    },
    {  # OneNET access directly (manual §4.1: bootstrap off)
        "carrier": "onenet",
        "listener": "onenet",
        "model": "ML307R",
        "imei": "869975037700002",
        "imsi": "460041234599002",
        "lines": [
            'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0',
            'AT+MIPLADDOBJ=0,3303,1,"1",1,0',
            "AT+MIPLOPEN=0,3000,30",
        ],
    },
    {  # §5.3
        "carrier": "ctwing",
        "listener": "ctwing",
        "model": "ML307R",
        "imei": "869975037700003",
        "imsi": "460111234599003",
        "lines": [
            'AT+MIPLCREATEEX="lwm2m.ctwing.cn:5683",0',
            'AT+MIPLCFG="platform",0,1',
            'AT+MIPLADDOBJ=0,19,2,"11",0,0',
            'AT+MIPLDISCOVERRSP=0,19,1,3,"1;0"',
            "AT+MIPLOPEN=0,3000,30",
        ],
    },
    {  # §5.5
        "carrier": "yanfei",
        "listener": "yanfei",
        "model": "MN316",
        "imei": "869975037700004",
        "imsi": "460011234599004",
        "lines": [
            'AT+MIPLCREATEEX="dmp-coap.cuiot.cn:5683",0',
            'AT+MIPLCFG="platform",0,2',
            'AT+MIPLADDOBJ=0,3300,1,"1",0,1',
            'AT+MIPLDISCOVERRSP=0,3300,1,4,"5700"',
            "AT+MIPLOPEN=0,3000,30",
        ],
    },
    {  # §5.6: the manual writes the host without a port
        "carrier": "huawei",
        "listener": "huawei",
        "model": "MN316",
        "imei": "869975037700005",
        "imsi": "460011234599005",
        "lines": [
            'AT+MIPLCREATEEX="iot-coaps.cn-north-4.myhuaweicloud.com",0',
            'AT+MIPLCFG="platform",0,3',
            'AT+MIPLADDOBJ=0,19,2,"11",0,0',
            'AT+MIPLDISCOVERRSP=0,19,1,3,"1;0"',
            "AT+MIPLOPEN=0,3000,30",
        ],
    },
]


def _compose() -> dict[str, Any]:
    try:
        import yaml
    except ImportError:
        missing("PyYAML is not installed (Python package pyyaml)")
        raise
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _namespace_tools() -> None:
    for tool in ("unshare", "ip", "mount"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not installed (util-linux / iproute2)")
    probe = subprocess.run(["unshare", "-rnm", "true"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        missing(f"cannot create a network namespace here: {probe.stderr.decode().strip()}")


def _server_environment(service: dict[str, Any], database_url: str) -> dict[str, str]:
    environment = {k: "" if v is None else str(v) for k, v in service["environment"].items()}
    environment["TESTBED_DATABASE_URL"] = database_url  # SQLite stands in for the postgres service
    environment["TESTBED_API_KEY"] = API_KEY
    return environment


def test_each_carrier_host_name_reaches_its_listener_in_compose(tmp_path: Path) -> None:
    _namespace_tools()
    compose = _compose()
    server = compose["services"]["server"]
    module = compose["services"]["module"]
    networks = server["networks"].values()
    aliases = [alias for network in networks for alias in (network or {}).get("aliases", [])]
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{CONTAINER_ADDRESS} server {' '.join(aliases)}\n")
    # The service's shell command as compose runs it ($$ is compose's escape for $).
    command = server["command"][-1].replace("$$", "$")
    config = {
        "command": command,
        "environment": _server_environment(server, f"sqlite+aiosqlite:///{tmp_path}/testbed.db"),
        "module_environment": {k: str(v) for k, v in module.get("environment", {}).items()},
        "server_name": "server",
        "logins": LOGINS,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESTBED_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    setup = (
        'mount --bind "$1" /etc/hosts && ip link set lo up && ip addr add "$2"/32 dev lo && '
        'shift 2 && exec "$@"'
    )
    result = subprocess.run(
        [
            *("unshare", "-rnm", "sh", "-c", setup, "sh", str(hosts), CONTAINER_ADDRESS),
            *(sys.executable, str(SCRIPT), json.dumps(config)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and lines[-1:] == ["done"], result.stderr[-4000:]
    *outcomes, hosted = [json.loads(line) for line in lines[:-1]]
    assert len(outcomes) == len(LOGINS)
    # The demo modules `testbed up` hosts in the server container reach their carriers too.
    assert hosted["hosted"] and all(carrier == listener for carrier, listener in hosted["hosted"]), hosted
    for spec, outcome in zip(LOGINS, outcomes, strict=True):
        assert "6" in outcome["events"], (spec["lines"][0], outcome)
        assert outcome["listener"] == spec["listener"], (spec["lines"][0], outcome)
    assert outcomes[0]["events"].index("2") < outcomes[0]["events"].index("6")  # bootstrapped first


def test_the_module_service_routes_carriers_by_port_like_the_server_listens() -> None:
    """The compose `module` service's routes and the server's carrier ports are the same table."""
    from emulator.carrier_ports import CARRIER_PORTS as ROUTES
    from server.settings import CARRIER_ADDRESSES, CARRIER_PORTS

    by_address = {address: name for name, (_c, _r, address) in CARRIER_ADDRESSES.items()}
    assert {by_address[a]: (coap, dtls) for a, (_n, coap, dtls) in ROUTES.items()} == CARRIER_PORTS
    compose = _compose()
    published = set(compose["services"]["server"]["ports"])
    assert "5685-5694:5685-5694/udp" in published
    assert compose["services"]["module"]["environment"]["TESTBED_CARRIER_PORTS"] == "1"
    assert compose["services"]["server"]["environment"]["TESTBED_CARRIER_HOST"] == "0.0.0.0"
