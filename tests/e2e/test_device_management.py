"""Every LwM2M operation end to end over real UDP on loopback: the server's Python API against the
emulated LwM2M client, in TLV, SenML JSON and SenML CBOR (and LwM2M JSON where it applies),
for LwM2M 1.0 and 1.1 clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from emulator.client.client import Lwm2mClient
from emulator.client.events import ClientEvent
from emulator.client.settings import ClientSettings
from emulator.client.tree import ObjectTreeHandler
from lwm2m.model.builtin import builtin_registry
from lwm2m.node import MultipleResource, ObjectInstance, SingleResource
from lwm2m.numbers import CoapCode, ContentFormat
from lwm2m.path import Path
from server.lwm2m_server import Lwm2mServer
from server.services.errors import DeviceSleeping, RequestFailed
from tests.conftest import ServerFactory

MODEL = builtin_registry()
FORMATS = [ContentFormat.TLV, ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR]
COMPOSITE_FORMATS = [ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR]


def make_tree() -> ObjectTreeHandler:
    tree = ObjectTreeHandler(MODEL)
    tree.add_instance(1, 0, {0: 101, 1: 86400, 2: 1, 3: 60, 6: False, 7: "U"})
    tree.add_instance(3, 0, {0: "China Mobile", 1: "ML307R", 2: "869975030000461", 9: 80, 6: {0: 1, 1: 5}})
    tree.add_instance(3303, 0, {5700: 21.5, 5701: "Cel"})
    tree.add_instance(3311, 0, {5850: False, 5851: 10})
    return tree


@dataclass
class Device:
    endpoint: str
    client: Lwm2mClient
    tree: ObjectTreeHandler
    events: list[ClientEvent]


@asynccontextmanager
async def device(
    server: Lwm2mServer, endpoint: str, version: str = "1.1", binding: str = "U", **settings: Any
) -> AsyncIterator[Device]:
    tree = make_tree()
    events: list[ClientEvent] = []
    host, port = server.listeners["default"].address
    client = Lwm2mClient(
        ClientSettings(
            endpoint=endpoint,
            server_host=host,
            server_port=port,
            lifetime=300,
            binding=binding,
            lwm2m_version=version,
            object_links=tree.object_links,
            **settings,
        ),
        tree,
        MODEL,
        on_event=events.append,
    )
    await client.start()
    try:
        await client.register()
        yield Device(endpoint, client, tree, events)
    finally:
        await client.stop()


async def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
async def test_read_instance_resource_and_multiple_resource(server: Lwm2mServer, fmt: ContentFormat) -> None:
    async with device(server, "read-dev"):
        node = await server.read("read-dev", "/3/0", content_format=fmt)
        assert isinstance(node, ObjectInstance)
        assert node.resources[0] == SingleResource(0, "China Mobile", node.resources[0].type)
        assert node.resources[9].value == 80  # type: ignore[union-attr]
        multi = await server.read("read-dev", "/3/0/6", content_format=fmt)
        assert isinstance(multi, MultipleResource) and multi.instances == {0: 1, 1: 5}
        single = await server.read("read-dev", "/3303/0/5700", content_format=fmt)
        assert isinstance(single, SingleResource) and single.value == 21.5
        latest = await server.latest_values("read-dev")
        assert latest["/3/0/0"]["value"] == "China Mobile"
        assert latest["/3303/0/5700"]["value"] == 21.5


@pytest.mark.parametrize("version", ["1.0", "1.1"])
async def test_read_without_accept_decodes_what_the_client_chooses(server: Lwm2mServer, version: str) -> None:
    async with device(server, f"plain-{version}", version=version):
        node = await server.read(f"plain-{version}", "/3303/0")
        assert isinstance(node, ObjectInstance) and node.resources[5700].value == 21.5  # type: ignore[union-attr]
        value = await server.read(f"plain-{version}", "/3/0/0")
        assert isinstance(value, SingleResource) and value.value == "China Mobile"


async def test_read_of_unknown_path_fails_with_not_found(server: Lwm2mServer) -> None:
    async with device(server, "nf-dev"):
        with pytest.raises(RequestFailed) as failure:
            await server.read("nf-dev", "/3303/9")
        assert failure.value.code == CoapCode.NOT_FOUND


async def test_discover_lists_instances_and_attributes(server: Lwm2mServer) -> None:
    async with device(server, "disc-dev"):
        await server.write_attributes("disc-dev", "/3303/0/5700", {"pmin": 2, "pmax": 30})
        links = await server.discover("disc-dev", "/3303/0")
        targets = {link.target: dict(link.params) for link in links}
        assert "/3303/0" in targets and "/3303/0/5700" in targets
        assert targets["/3303/0/5700"].get("pmin") == "2"


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
async def test_write_replace_and_partial_update(server: Lwm2mServer, fmt: ContentFormat) -> None:
    async with device(server, "write-dev") as dev:
        await server.write("write-dev", "/1/0/1", 3600, content_format=fmt)
        assert dev.tree.get_value("/1/0/1") == 3600
        await server.write("write-dev", "/1/0", {2: 5, 3: 120}, replace=False, content_format=fmt)
        assert dev.tree.get_value("/1/0/2") == 5 and dev.tree.get_value("/1/0/3") == 120
        assert dev.tree.get_value("/1/0/1") == 3600  # partial update keeps the rest
        await server.write("write-dev", "/3311/0/5850", True, content_format=fmt)
        assert dev.tree.get_value("/3311/0/5850") is True


async def test_write_to_read_only_resource_fails_with_method_not_allowed(server: Lwm2mServer) -> None:
    async with device(server, "ro-dev"):
        with pytest.raises(RequestFailed) as failure:
            await server.write("ro-dev", "/3/0/0", "other")
        assert failure.value.code == CoapCode.METHOD_NOT_ALLOWED


async def test_execute_passes_arguments(server: Lwm2mServer) -> None:
    async with device(server, "exec-dev") as dev:
        seen: list[str] = []
        dev.tree.on_execute("/3/0/4", lambda args: seen.append(args) or None)
        await server.execute("exec-dev", "/3/0/4", "0='reboot'")
        assert seen == ["0='reboot'"]


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
async def test_create_and_delete_an_instance(server: Lwm2mServer, fmt: ContentFormat) -> None:
    async with device(server, "create-dev") as dev:
        await server.create(
            "create-dev", "/3303", {5700: 30.25, 5701: "Cel"}, instance_id=7, content_format=fmt
        )
        assert dev.tree.get_value("/3303/7/5700") == 30.25
        node = await server.read("create-dev", "/3303/7/5700")
        assert isinstance(node, SingleResource) and node.value == 30.25
        await server.delete("create-dev", "/3303/7")
        with pytest.raises(RequestFailed):
            await server.read("create-dev", "/3303/7")


@pytest.mark.parametrize("fmt", COMPOSITE_FORMATS, ids=lambda f: f.name)
async def test_read_composite_and_write_composite(server: Lwm2mServer, fmt: ContentFormat) -> None:
    async with device(server, "comp-dev") as dev:
        values = await server.read_composite("comp-dev", ["/3/0/0", "/3303/0/5700"], content_format=fmt)
        assert values == {Path(3, 0, 0): "China Mobile", Path(3303, 0, 5700): 21.5}
        await server.write_composite("comp-dev", {"/1/0/1": 7200, "/3311/0/5851": 55}, content_format=fmt)
        assert dev.tree.get_value("/1/0/1") == 7200 and dev.tree.get_value("/3311/0/5851") == 55


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
async def test_observe_stores_every_notification_and_cancel_stops_them(
    server: Lwm2mServer, fmt: ContentFormat
) -> None:
    async with device(server, "obs-dev") as dev:
        observation = await server.observe("obs-dev", "/3303/0/5700", content_format=fmt)
        assert observation.observed and isinstance(observation.node, SingleResource)
        assert observation.node.value == 21.5
        with server.subscribe(endpoint="obs-dev", kinds=("notification",)) as events:
            for value in (22.0, 23.5, 24.0):
                dev.tree.set_value("/3303/0/5700", value)
                event = await events.get(timeout=5)
                assert event.data["values"][0]["value"] == value
        await server.reporting.drain()
        points = await server.datapoints("obs-dev", "/3303/0/5700")
        assert [p.value for p in points] == [21.5, 22.0, 23.5, 24.0]
        assert [p.source for p in points] == ["observe", "notify", "notify", "notify"]
        await server.cancel_observation("obs-dev", observation.id)
        await wait_for(lambda: not dev.tree.observed_paths)
        assert server.observations("obs-dev") == []
        assert await server.store.observations("obs-dev") == []


async def test_passive_cancel_resets_the_next_notification(server: Lwm2mServer) -> None:
    async with device(server, "rst-dev", confirmable_notifications=True) as dev:
        observation = await server.observe("rst-dev", "/3303/0/5700")
        await server.cancel_observation("rst-dev", observation.id, active=False)
        dev.tree.set_value("/3303/0/5700", 30.0)
        await wait_for(lambda: not dev.tree.observed_paths)
        assert ClientEvent.OBSERVE_CANCELLED in dev.events


async def test_observe_with_attributes_writes_them_first(server: Lwm2mServer) -> None:
    async with device(server, "attr-dev") as dev:
        await server.observe("attr-dev", "/3303/0/5700", attributes={"pmin": 1, "pmax": 60, "st": 0.5})
        assert dev.tree.attributes[Path(3303, 0, 5700)] == {"pmin": "1", "pmax": "60", "st": "0.5"}


@pytest.mark.parametrize("fmt", COMPOSITE_FORMATS, ids=lambda f: f.name)
async def test_observe_composite(server: Lwm2mServer, fmt: ContentFormat) -> None:
    async with device(server, "oc-dev") as dev:
        observation = await server.observe("oc-dev", ["/3303/0/5700", "/3311/0/5851"], content_format=fmt)
        assert observation.observed
        assert {v["path"]: v["value"] for v in observation.values} == {
            "/3303/0/5700": 21.5,
            "/3311/0/5851": 10,
        }
        with server.subscribe(endpoint="oc-dev", kinds=("notification",)) as events:
            dev.tree.set_value("/3311/0/5851", 80)
            event = await events.get(timeout=5)
        assert {"path": "/3311/0/5851", "type": "Integer", "value": 80} in event.data["values"]


@pytest.mark.parametrize("fmt", COMPOSITE_FORMATS, ids=lambda f: f.name)
async def test_send_values_are_stored(server: Lwm2mServer, fmt: ContentFormat) -> None:
    async with device(server, "send-dev") as dev:
        with server.subscribe(endpoint="send-dev", kinds=("send",)) as events:
            code = await dev.client.send(
                {Path(3303, 0, 5700): SingleResource(5700, 19.0, MODEL.resource_type(3303, 5700))}, fmt
            )
            assert code == CoapCode.CHANGED
            await events.get(timeout=5)
        points = await server.datapoints("send-dev", "/3303/0/5700")
        assert [(p.value, p.source) for p in points] == [(19.0, "send")]


async def test_queue_mode_requests_wait_for_the_next_update(server_factory: ServerFactory) -> None:
    server = await server_factory()
    server.queue.awake_window = 0.2
    async with device(server, "q-dev", binding="UQ") as dev:
        await asyncio.sleep(0.3)
        with pytest.raises(DeviceSleeping):
            await server.read("q-dev", "/3/0/0")
        queued = asyncio.create_task(server.read("q-dev", "/3/0/0", queue=True))
        write = asyncio.create_task(server.write("q-dev", "/1/0/1", 1234, queue=True))
        await asyncio.sleep(0.2)
        assert not queued.done()
        assert len(await server.store.pending_requests("q-dev")) == 2
        await dev.client.update()
        node = await asyncio.wait_for(queued, 5)
        await asyncio.wait_for(write, 5)
        assert isinstance(node, SingleResource) and node.value == "China Mobile"
        assert dev.tree.get_value("/1/0/1") == 1234
        assert await server.store.pending_requests("q-dev") == []
        done = await server.store.pending_requests("q-dev", status="done")
        assert [r.operation for r in done] == ["read", "write"]


async def test_device_registered_before_a_restart_is_readable_after_it(
    server_factory: ServerFactory, sqlite_url: str
) -> None:
    first = await server_factory(sqlite_url)
    port = first.listeners["default"].port
    async with device(first, "restart-dev"):
        await first.stop()
        second = await server_factory(
            sqlite_url, listeners=[{"name": "default", "host": "127.0.0.1", "port": port, "dtls_port": None}]
        )
        node = await second.read("restart-dev", "/3/0/0")
        assert isinstance(node, SingleResource) and node.value == "China Mobile"


async def test_observations_are_reestablished_after_a_restart(
    server_factory: ServerFactory, sqlite_url: str
) -> None:
    first = await server_factory(sqlite_url)
    port = first.listeners["default"].port
    async with device(first, "reobs-dev") as dev:
        await first.observe("reobs-dev", "/3303/0/5700")
        await first.stop()
        second = await server_factory(
            sqlite_url, listeners=[{"name": "default", "host": "127.0.0.1", "port": port, "dtls_port": None}]
        )
        await wait_for(lambda: bool(second.observations("reobs-dev")))
        with second.subscribe(endpoint="reobs-dev", kinds=("notification",)) as events:
            dev.tree.set_value("/3303/0/5700", 40.0)
            event = await events.get(timeout=5)
        assert event.data["values"][0]["value"] == 40.0


@pytest.mark.parametrize("fmt", [ContentFormat.TLV, ContentFormat.SENML_CBOR], ids=lambda f: f.name)
async def test_payloads_over_one_kib_travel_block_wise(server: Lwm2mServer, fmt: ContentFormat) -> None:
    big = bytes(range(256)) * 12  # 3 KiB: several blocks at the default block size
    async with device(server, "block-dev") as dev:
        dev.tree.add_instance(19, 0, {0: {0: b"\x00"}})
        await server.write("block-dev", "/19/0/0", {0: big}, content_format=fmt)
        assert dev.tree.get_value("/19/0/0/0") == big
        node = await server.read("block-dev", "/19/0/0", content_format=fmt)
        assert isinstance(node, MultipleResource) and node.instances == {0: big}


async def test_objects_from_a_ddf_directory_type_the_values(
    server_factory: ServerFactory, tmp_path: Any
) -> None:
    ddf = """<?xml version="1.0" encoding="utf-8"?>
<LWM2M><Object ObjectType="MODefinition"><Name>Counter</Name><Description1></Description1>
<ObjectID>32769</ObjectID><ObjectURN>urn:oma:lwm2m:x:32769</ObjectURN><MultipleInstances>Single</MultipleInstances>
<Mandatory>Optional</Mandatory><Resources>
<Item ID="1"><Name>Count</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>
<Mandatory>Mandatory</Mandatory><Type>Integer</Type><RangeEnumeration></RangeEnumeration><Units></Units>
<Description></Description></Item></Resources><Description2></Description2></Object></LWM2M>"""
    (tmp_path / "32769.xml").write_text(ddf)
    server = await server_factory(models_dir=str(tmp_path))
    assert server.model.resource_type(32769, 1).value == "Integer"
    async with device(server, "ddf-dev") as dev:
        dev.tree.add_instance(32769, 0, {1: 5})
        await server.write("ddf-dev", "/32769/0/1", "41")  # coerced to Integer by the model
        assert dev.tree.get_value("/32769/0/1") == 41
        node = await server.read("ddf-dev", "/32769/0/1", content_format=ContentFormat.TLV)
        assert isinstance(node, SingleResource) and node.value == 41
