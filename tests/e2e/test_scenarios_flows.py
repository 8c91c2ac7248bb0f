"""Shipped scenarios against a real `Lwm2mServer` (plain CoAP, no carrier rules): the custom
platform flow and the Yanfei flow of manual §5.5. The test plays the platform: the scenario's
`do observe|read|write|execute` steps call the server's API on the one registered endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence

import pytest

from emulator.frontends.tcp import serve_tcp
from emulator.runner import EmulatedModule
from emulator.scenarios import Action, ModuleTransport, load_flow, parse_script, run_scenario
from emulator.scenarios.runner import StreamTransport
from server.lwm2m_server import Lwm2mServer
from tests.conftest import ServerFactory

IMEI = "869975030000461"


def platform_actions(server: Lwm2mServer) -> Mapping[str, Action]:
    def endpoint() -> str:
        (registration,) = server.registered()
        return registration.endpoint

    async def observe(args: Sequence[str]) -> object:
        return await server.observe(endpoint(), args[0])

    async def read(args: Sequence[str]) -> object:
        return await server.read(endpoint(), args[0])

    async def write(args: Sequence[str]) -> None:
        value: object = args[1]
        if args[0].startswith("/33"):
            value = float(args[1])
        elif args[0].startswith("/19/"):
            value = bytes.fromhex(args[1])
        await server.write(endpoint(), args[0], value)

    async def execute(args: Sequence[str]) -> None:
        await server.execute(endpoint(), args[0], " ".join(args[1:]))

    return {"observe": observe, "read": read, "write": write, "execute": execute}


@pytest.fixture
async def server(server_factory: ServerFactory) -> Lwm2mServer:
    started: Lwm2mServer = await server_factory()
    return started


async def emulated(model: str, hosts: Mapping[str, str] | None = None) -> EmulatedModule:
    module = EmulatedModule(model, imei=IMEI, request_timeout=3.0, hosts=hosts)
    await module.start()
    return module


@pytest.fixture
async def modules() -> AsyncIterator[list[EmulatedModule]]:
    started: list[EmulatedModule] = []
    yield started
    for module in started:
        await module.stop()


async def test_custom_platform_flow_passes_against_the_server(
    server: Lwm2mServer, modules: list[EmulatedModule]
) -> None:
    script = load_flow("custom")
    module = await emulated(script.meta["model"])
    modules.append(module)
    port = server.listeners["default"].address[1]
    transport = ModuleTransport(module)
    result = await run_scenario(
        script, transport, variables={"server": f"127.0.0.1:{port}"}, actions=platform_actions(server)
    )
    result.raise_for_failure()
    assert server.registration("testbed-custom-0001") is None, "the flow ends de-registered"
    points = await server.datapoints("testbed-custom-0001", "/3303/0/5700")
    assert points, "the notify was stored"


async def test_yanfei_flow_of_manual_5_5_passes_with_its_carrier_host_name(
    server: Lwm2mServer, modules: list[EmulatedModule]
) -> None:
    script = load_flow("5.5-yanfei")
    # The carrier map sends dmp-coap.cuiot.cn to the Yanfei listener of `testbed up`; here the
    # test server on 127.0.0.1 stands in for it.
    module = await emulated(script.meta["model"], hosts={"dmp-coap.cuiot.cn": "127.0.0.1"})
    modules.append(module)
    port = server.listeners["default"].address[1]
    result = await run_scenario(
        script,
        ModuleTransport(module),
        variables={"server": f"dmp-coap.cuiot.cn:{port}"},  # the host map sends it to loopback
        actions=platform_actions(server),
    )
    result.raise_for_failure()
    assert result.variables["obs"].isdigit()


async def test_a_flow_runs_over_the_tcp_front_end(server: Lwm2mServer, modules: list[EmulatedModule]) -> None:
    module = await emulated("ML307R")
    modules.append(module)
    listener = await serve_tcp(module, "127.0.0.1", 0)
    import asyncio

    reader, writer = await asyncio.open_connection(*listener.sockets[0].getsockname()[:2])
    port = server.listeners["default"].address[1]
    script = parse_script(
        "@timeout 5\n"
        'send AT+MIPLCREATEEX="127.0.0.1:${port}",2\nexpect +MIPLCREATEEX: 0\nexpect OK\n'
        'send AT+MIPLADDOBJ=0,3303,1,"1",1,0\nexpect OK\n'
        "send AT+MIPLOPEN=0,600\nexpect OK\nexpect +MIPLEVENT: 0,6\n"
        "send AT+MIPLCLOSE=0\nexpect OK\nexpect +MIPLEVENT: 0,15\n",
        "tcp.txt",
    )
    result = await run_scenario(script, StreamTransport(reader, writer), variables={"port": str(port)})
    writer.close()
    result.raise_for_failure()
    assert ("<", "+MIPLEVENT: 0,6") in result.exchange


async def test_a_failing_flow_reports_the_step_that_did_not_happen(
    server: Lwm2mServer, modules: list[EmulatedModule]
) -> None:
    """Without a platform action the observe never comes: the failure names the expect line."""
    script = load_flow("custom")
    module = await emulated("ML307R")
    modules.append(module)
    port = server.listeners["default"].address[1]
    short = parse_script(
        "\n".join(line for line in load_flow_text("custom").splitlines()).replace(
            "@timeout 10", "@timeout 0.5"
        ),
        "custom.txt",
    )
    result = await run_scenario(
        short, ModuleTransport(module), variables={"server": f"127.0.0.1:{port}"}, missing_actions="log"
    )
    assert result.failure is not None
    assert result.failure.step == "expect +MIPLOBSERVE: 0,<obs>,1,3303,0,-1"
    assert script.steps[0].line < result.failure.line


def load_flow_text(name: str) -> str:
    from importlib import resources

    return (resources.files("emulator.scenarios") / "flows" / f"{name}.txt").read_text(encoding="utf-8")
