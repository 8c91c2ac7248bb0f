"""The firmware store over the real HTTP API and its independent clients: upload, list, delete
and who sees what; Debian's `coap-client-openssl` fetching `/fw/{id}` block-wise over real UDP;
`curl` resuming with `Range`."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path as FsPath

import httpx
import pytest

from lwm2m.firmware_package import pack
from server.lwm2m_server import Lwm2mServer
from server.services.firmware_store import FirmwareStore
from tests.conftest import ServerFactory
from tests.e2e.fota_support import ADMIN_KEY, Cloud, running_cloud
from tests.support import require_tool

PACKAGE = pack("ML307R", "1.2.0", bytes(range(256)) * 40)  # 10 KiB


@pytest.fixture
async def cloud(server_factory: ServerFactory, tmp_path: FsPath) -> AsyncIterator[Cloud]:
    server: Lwm2mServer = await server_factory(
        firmware_dir=str(tmp_path / "firmware"), api_key=ADMIN_KEY, firmware_max_size=64 * 1024
    )
    async with running_cloud(server) as running:
        yield running


async def test_an_upload_is_stored_once_with_its_sha256_and_both_uris(cloud: Cloud, tmp_path: FsPath) -> None:
    stored = await cloud.upload(PACKAGE)
    assert stored["version"] == "1.2.0" and stored["models"] == ["ML307R"]
    assert stored["size"] == len(PACKAGE)
    assert stored["sha256"] == hashlib.sha256(PACKAGE).hexdigest()
    assert stored["coap_uri"] == f"coap://127.0.0.1:{cloud.coap_port}/fw/{stored['id']}"
    assert stored["http_uri"] == f"{cloud.http.url}/fw/{stored['id']}"
    assert (tmp_path / "firmware" / f"{stored['id']}.bin").read_bytes() == PACKAGE
    listed = (await cloud.client.get("/api/v1/firmware")).json()
    assert [p["id"] for p in listed["items"]] == [stored["id"]]
    assert (await cloud.client.delete(f"/api/v1/firmware/{stored['id']}")).json() == {"ok": True}
    assert (await cloud.client.get("/api/v1/firmware")).json()["total"] == 0
    assert not (tmp_path / "firmware" / f"{stored['id']}.bin").exists()
    gone = await cloud.client.delete(f"/api/v1/firmware/{stored['id']}")
    assert gone.status_code == 404 and gone.json()["errno"] == 3


async def test_packages_survive_a_restart_of_the_store(cloud: Cloud, tmp_path: FsPath) -> None:
    stored = await cloud.upload(PACKAGE)
    old = cloud.server.firmware
    reopened = FirmwareStore(old.repository, tmp_path / "firmware", old.max_size)
    await reopened.load()
    assert reopened.get(stored["id"]).sha256 == stored["sha256"]
    assert reopened.content(stored["id"]) == PACKAGE


async def test_a_product_key_sees_only_its_products_packages(cloud: Cloud) -> None:
    server = cloud.server
    product = await server.provisioning.create_product("meters", "onenet")
    other = await server.provisioning.create_product("lamps", "onenet")
    admin_package = await cloud.upload(PACKAGE)
    async with httpx.AsyncClient(base_url=cloud.http.url, headers={"api-key": product.master_key}) as client:
        mine = await client.post(
            "/api/v1/firmware",
            files={"file": ("m.bin", PACKAGE)},
            data={"version": "2.0.0", "product_id": other.id},
        )
        assert mine.status_code == 200 and mine.json()["product_id"] == product.id
        listed = (await client.get("/api/v1/firmware")).json()["items"]
        assert [p["id"] for p in listed] == [mine.json()["id"]]
        refused = await client.delete(f"/api/v1/firmware/{admin_package['id']}")
        assert refused.status_code == 404
        task = await client.post(
            "/api/v1/fota/tasks", json={"firmware_id": admin_package["id"], "endpoints": ["x"]}
        )
        assert task.status_code == 404
    async with httpx.AsyncClient(base_url=cloud.http.url, headers={"api-key": other.master_key}) as client:
        assert (await client.get("/api/v1/firmware")).json()["items"] == []


async def test_bad_uploads_get_a_clear_error_and_store_nothing(cloud: Cloud) -> None:
    too_big = await cloud.client.post(
        "/api/v1/firmware", files={"file": ("f.bin", b"x" * (65 * 1024))}, data={"version": "1"}
    )
    assert too_big.status_code == 400 and "limit" in too_big.json()["error"]
    empty = await cloud.client.post("/api/v1/firmware", files={"file": ("f.bin", b"")}, data={"version": "1"})
    assert empty.status_code == 400 and empty.json()["errno"] == 5108
    no_version = await cloud.client.post("/api/v1/firmware", files={"file": ("f.bin", b"x")})
    assert no_version.status_code == 400
    unknown = await cloud.client.post(
        "/api/v1/fota/tasks", json={"firmware_id": 99, "endpoints": ["x"], "method": "pull-coap"}
    )
    assert unknown.status_code == 404
    stored = await cloud.upload(PACKAGE)
    bad_method = await cloud.client.post(
        "/api/v1/fota/tasks",
        json={"firmware_id": stored["id"], "endpoints": ["x"], "method": "carrier-pigeon"},
    )
    assert bad_method.status_code == 400
    bad_timeout = await cloud.client.post(
        "/api/v1/fota/tasks", json={"firmware_id": stored["id"], "endpoints": ["x"], "timeouts": {"lunch": 5}}
    )
    assert bad_timeout.status_code == 400 and "lunch" in bad_timeout.json()["error"]
    assert (await cloud.client.get("/api/v1/firmware")).json()["total"] == 1


async def test_coap_client_fetches_the_package_block_wise_and_its_sha256_matches(
    cloud: Cloud, tmp_path: FsPath
) -> None:
    tool = require_tool("coap-client-openssl", "libcoap3-bin")
    stored = await cloud.upload(PACKAGE)
    out = tmp_path / "fetched.bin"
    for block_size in ("1024", "64"):
        before = cloud.server.firmware_server.blocks_served
        process = await asyncio.create_subprocess_exec(
            tool,
            "-m",
            "get",
            "-b",
            block_size,
            "-o",
            str(out),
            stored["coap_uri"],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await asyncio.wait_for(process.communicate(), 30)
        assert hashlib.sha256(out.read_bytes()).hexdigest() == stored["sha256"]
        blocks = -(-len(PACKAGE) // int(block_size))
        assert cloud.server.firmware_server.blocks_served - before == blocks
        out.unlink()


async def test_curl_resumes_a_download_with_range(cloud: Cloud, tmp_path: FsPath) -> None:
    tool = require_tool("curl", "curl")
    stored = await cloud.upload(PACKAGE)
    out = tmp_path / "fetched.bin"
    out.write_bytes(PACKAGE[:3000])  # an interrupted download
    process = await asyncio.create_subprocess_exec(
        tool,
        "-sS",
        "-f",
        "-C",
        "-",
        "-o",
        str(out),
        stored["http_uri"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == stored["sha256"]
    ranged = await cloud.client.get(stored["http_uri"], headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206 and ranged.content == PACKAGE[100:200]
    assert ranged.headers["content-range"] == f"bytes 100-199/{len(PACKAGE)}"
    past = await cloud.client.get(stored["http_uri"], headers={"Range": f"bytes={len(PACKAGE)}-"})
    assert past.status_code == 416


async def test_fota_device_events_become_push_messages_of_their_own_type(cloud: Cloud) -> None:
    from server.events import Event
    from server.services.push import FOTA_MESSAGE_TYPE, PushService

    product = await cloud.server.provisioning.create_product("meters", "onenet")
    device = await cloud.server.provisioning.create_device(product_id=product.id, imei="869975030000999")
    event = Event(
        "fota.device",
        "869975030000999",
        {"task_id": 3, "status": "failed", "percent": 40.0, "update_result": 5, "reason": "integrity"},
    )
    (message,) = PushService(cloud.server).messages_of(event, device)
    assert message["type"] == FOTA_MESSAGE_TYPE and message["dev_id"] == device.id
    assert message["fota"] == {
        "task_id": 3,
        "status": "failed",
        "percent": 40.0,
        "update_result": 5,
        "reason": "integrity",
    }


async def test_a_retransmitted_block_request_is_answered_again_from_the_one_copy(cloud: Cloud) -> None:
    """RFC 7252 §4.5 lets an idempotent request be processed again: the listener keeps no copy
    of each block it sent for four minutes, and a duplicate GET still gets its block."""
    import socket

    import aiocoap
    from aiocoap.numbers.codes import Code
    from aiocoap.numbers.types import CON
    from aiocoap.optiontypes import BlockOption

    stored = await cloud.upload(PACKAGE)
    request = aiocoap.Message(code=Code.GET)
    request.mtype, request.mid, request.token = CON, 4242, b"\x01\x02"
    request.opt.uri_path = ("fw", str(stored["id"]))
    request.opt.block2 = BlockOption.BlockwiseTuple(3, False, 6)
    datagram = request.encode()
    loop = asyncio.get_running_loop()
    served = cloud.server.firmware_server.blocks_served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", cloud.coap_port))
        answers = []
        for _ in range(2):
            await loop.sock_sendall(sock, datagram)
            answers.append(aiocoap.Message.decode(await asyncio.wait_for(loop.sock_recv(sock, 2048), 5)))
    assert [a.mid for a in answers] == [4242, 4242]
    assert all(bytes(a.payload) == PACKAGE[3 * 1024 : 4 * 1024] for a in answers)
    assert cloud.server.firmware_server.blocks_served - served == 2


async def test_a_task_by_product_names_every_device_of_the_product_and_can_be_cancelled(cloud: Cloud) -> None:
    server = cloud.server
    product = await server.provisioning.create_product("meters", "onenet")
    devices = [
        await server.provisioning.create_device(product_id=product.id, imei=imei, imsi="460041234500001")
        for imei in ("869975030000801", "869975030000802")
    ]
    async with httpx.AsyncClient(base_url=cloud.http.url, headers={"api-key": product.master_key}) as client:
        stored = await client.post(
            "/api/v1/firmware", files={"file": ("f.bin", PACKAGE)}, data={"version": "2.0"}
        )
        task = await client.post(
            "/api/v1/fota/tasks", json={"firmware_id": stored.json()["id"], "product_id": product.id}
        )
        assert task.status_code == 200, task.text
        listed = {d["endpoint"] for d in task.json()["devices"]}
        assert listed == {server.endpoint_of(d) for d in devices}
        assert task.json()["product_id"] == product.id
        cancelled = await client.post(f"/api/v1/fota/tasks/{task.json()['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"
        assert {d["status"] for d in cancelled.json()["devices"]} == {"cancelled"}
        assert (await client.get("/api/v1/fota/tasks")).json()["total"] == 1
