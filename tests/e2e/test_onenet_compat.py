"""A OneNET application, unchanged, against the private cloud, end to end with an emulated
OneMO module (issue 15). The application is written here the way OneNET's official Java SDK and
a typical Python client call the API: every request carries `api-key` (Java SDK) or the
`authorization` token (Python client), bodies are JSON with `Content-Type: application/json`,
and an answer is read as the SDKs read it: HTTP 200, `errno` 0 means success and `data` holds
the result; any other errno is the error.

Its HTTP push receiver checks what OneNET's push documentation says a receiver checks, written
here from that description and not taken from the server: the URL check `GET ?msg&nonce&signature`
(signature = Base64(MD5(token + nonce + msg)), the `+` of the Base64 turned into a space by URL
decoding restored) answered with `msg`; each delivery's `msg_signature` = Base64(MD5(token + nonce
+ msg as sent)); encrypted deliveries' `enc_msg` = Base64(AES-256-CBC(key = Base64Decode(
EncodingAESKey + "="), IV = key[:16], PKCS#7(16 random bytes + u32 BE length + msg))).

The module follows manual 5.1: AT+MIPLCREATEEX to OneNET's access address, AT+MIPLADDOBJ,
AT+MIPLDISCOVERRSP, AT+MIPLOPEN; reads, writes and executes reach the MCU as URCs answered with
AT+MIPLREADRSP / AT+MIPLWRITERSP / AT+MIPLEXECUTERSP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from mbedtls import cipher

from emulator.runner import EmulatedModule
from server.api.app import create_app
from server.api.serve import HttpHandle, serve_http
from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import Product
from tests.conftest import ServerFactory
from tests.e2e.carrier_support import IMEI, IMSI, at, module_for, start_carrier_server

TOKEN = "receivertoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"


@dataclass
class Receiver:
    """An application's push receiver: what it accepted, after checking every signature."""

    plain: list[dict[str, Any]] = field(default_factory=list)
    encrypted: list[dict[str, Any]] = field(default_factory=list)
    url_checks: int = 0

    @staticmethod
    def signature(nonce: str, msg: str) -> str:
        return base64.b64encode(hashlib.md5((TOKEN + nonce + msg).encode()).digest()).decode()

    @staticmethod
    def decrypt(enc_msg: str) -> str:
        key = base64.b64decode(AES_KEY + "=")
        plain = cipher.AES.new(key, cipher.MODE_CBC, key[:16]).decrypt(base64.b64decode(enc_msg))
        plain = plain[: -plain[-1]]
        length = int.from_bytes(plain[16:20], "big")
        assert len(plain) == 20 + length
        return plain[20:].decode()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/{kind}")
        async def check(request: Request) -> Response:
            query = dict(parse_qsl(urlsplit(str(request.url)).query))
            signature = query["signature"].replace(" ", "+")
            if signature != self.signature(query["nonce"], query["msg"]):
                return Response(status_code=403)
            self.url_checks += 1
            return Response(query["msg"])

        @app.post("/{kind}")
        async def deliver(kind: str, request: Request) -> Response:
            body = json.loads(await request.body())
            if kind == "encrypted":
                text = self.decrypt(body["enc_msg"])
                signed = body["enc_msg"]
            else:
                text = json.dumps(body["msg"], separators=(",", ":"), ensure_ascii=False)
                signed = text
            if body["msg_signature"] != self.signature(body["nonce"], signed):
                return Response(status_code=403)
            (self.encrypted if kind == "encrypted" else self.plain).append(json.loads(text))
            return Response("ok")

        return app


class Application:
    """A OneNET application's HTTP calls, as the Java SDK (`api-key`) or a Python client
    (`authorization` token) makes them; `call` returns `data` or raises with the errno."""

    def __init__(self, client: httpx.AsyncClient, product: Product, *, token: bool) -> None:
        self.client = client
        self.product = product
        self.token = token

    def auth_headers(self) -> dict[str, str]:
        if not self.token:
            return {"api-key": self.product.master_key}
        et = int(time.time()) + 3600
        res = f"products/{self.product.id}"
        text = f"{et}\nsha256\n{res}\n2018-10-31".encode()
        key = base64.b64decode(self.product.master_key)
        sign = base64.b64encode(hmac.new(key, text, hashlib.sha256).digest()).decode()
        value = (
            f"version=2018-10-31&res={quote(res, safe='')}&et={et}&method=sha256&sign={quote(sign, safe='')}"
        )
        return {"authorization": value}

    async def call(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        headers = {**self.auth_headers(), "Content-Type": "application/json"}
        content = json.dumps(body).encode() if body is not None else None
        response = await self.client.request(method, path, params=params, content=content, headers=headers)
        assert response.status_code == 200, response.text
        answer = response.json()
        if answer["errno"] != 0:
            raise OneNetError(answer["errno"], answer["error"])
        return answer.get("data")


class OneNetError(Exception):
    def __init__(self, errno: int, error: str) -> None:
        super().__init__(f"{errno} {error}")
        self.errno = errno


@dataclass
class Cloud:
    server: Lwm2mServer
    http: HttpHandle
    client: httpx.AsyncClient
    product: Product
    receiver: Receiver
    receiver_url: str


@pytest.fixture
async def cloud(server_factory: ServerFactory) -> AsyncIterator[Cloud]:
    server = await start_carrier_server(server_factory)
    app = create_app(server)
    app.state.push.backoff = 0.05
    http = await serve_http(app, "127.0.0.1", 0)
    receiver = Receiver()
    receiving = await serve_http(receiver.app(), "127.0.0.1", 0)
    product = await server.provisioning.create_product("OneNET application", "onenet")
    async with httpx.AsyncClient(base_url=http.url, timeout=15) as client:
        yield Cloud(server, http, client, product, receiver, receiving.url)
    await receiving.stop()
    await http.stop()


async def answer(module: EmulatedModule, urc: str, reply: str) -> None:
    """Wait for the URC (a regex with the message id as group 1) and answer it."""
    found = await module.expect(urc, timeout=10)
    await at(module, reply.format(mid=found.group(1)))


@pytest.mark.parametrize("token", [False, True], ids=["java-sdk-api-key", "python-authorization-token"])
async def test_a_onenet_application_runs_unchanged_against_the_cloud(cloud: Cloud, token: bool) -> None:
    app = Application(cloud.client, cloud.product, token=token)
    for kind, aes_key in (("plain", None), ("encrypted", AES_KEY)):
        added = await cloud.client.post(
            "/api/v1/push-targets",
            json={"url": f"{cloud.receiver_url}/{kind}", "token": TOKEN, "aes_key": aes_key},
            headers={"api-key": cloud.product.master_key},
        )
        assert added.status_code == 200 and added.json()["encrypted"] is (aes_key is not None), added.text
    assert cloud.receiver.url_checks == 2

    created = await app.call(
        "POST",
        "/devices",
        body={"title": "meter", "protocol": "LWM2M", "auth_info": {IMEI: IMSI}, "obsv": False},
    )
    device_id = created["device_id"]

    async with module_for(cloud.server) as module:
        await at(module, 'AT+MIPLCREATEEX="nbiotacc.heclouds.com:5683",0')
        await at(module, 'AT+MIPLADDOBJ=0,3200,1,"1",0,1')
        await at(module, 'AT+MIPLADDOBJ=0,10290,1,"1",0,0')
        await at(module, 'AT+MIPLDISCOVERRSP=0,3200,1,14,"5500;5750;9001"')
        await at(module, 'AT+MIPLDISCOVERRSP=0,10290,1,4,"6005"')
        await at(module, "AT+MIPLOPEN=0,3000,30")
        await module.expect(r"\+MIPLEVENT: 0,6\r\n", timeout=10)

        imei = {"imei": IMEI}
        detail = await app.call("GET", f"/devices/{device_id}")
        assert detail["online"] is True and detail["protocol"] == "LwM2M"

        read = asyncio.create_task(
            app.call("GET", "/nbiot", {**imei, "obj_id": 3200, "obj_inst_id": 0, "res_id": 5750})
        )
        await answer(
            module,
            r"\+MIPLREAD: 0,(\d+),3200,0,5750\r\n",
            'AT+MIPLREADRSP=0,{mid},1,3200,0,5750,1,5,"hello",0,0',
        )
        assert await read == [{"obj_inst_id": 0, "res": [{"res_id": 5750, "val": "hello"}]}]

        # Write, every documented type: basic (string), 1 = Opaque as hex, 2 = Time in seconds.
        write = asyncio.create_task(
            app.call(
                "POST",
                "/nbiot",
                {**imei, "obj_id": 3200, "obj_inst_id": 0, "mode": 2},
                {"data": [{"res_id": 5750, "val": "lobby"}, {"res_id": 9001, "val": "0102ABFF", "type": 1}]},
            )
        )
        lines = await module.expect(
            r"(?s)\+MIPLWRITE: 0,(\d+),3200,0,5750,1,5,lobby,1\r\n.*?\+MIPLWRITE: 0,\d+,3200,0,9001,(\d),(\d+),(\w+),0\r\n",
            timeout=10,
        )
        # The opaque resource arrives as its 4 bytes, not as 8 characters of text (which would print as
        # 3031303241424646). 9001 was never declared, so the module prints it as a hex string (type 6):
        # "未申明过类型的值将默认以16进制字符串类型打印" (§3.12 note); <len> counts hex digits, as in §5.6.
        assert (lines.group(2), lines.group(3), lines.group(4)) == ("6", "8", "0102ABFF")
        await at(module, f"AT+MIPLWRITERSP=0,{lines.group(1)},2")
        assert await write is None
        moment = 1_764_806_400
        write = asyncio.create_task(
            app.call(
                "POST",
                "/nbiot",
                {**imei, "obj_id": 10290, "obj_inst_id": 0, "mode": 2},
                {"data": [{"res_id": 6005, "val": moment, "type": 2}]},
            )
        )
        await answer(
            module, r"\+MIPLWRITE: 0,(\d+),10290,0,6005,\d,\d+,\w+,0\r\n", "AT+MIPLWRITERSP=0,{mid},2"
        )
        assert await write is None

        execute = asyncio.create_task(
            app.call(
                "POST",
                "/nbiot/execute",
                {**imei, "obj_id": 3200, "obj_inst_id": 0, "res_id": 5500},
                {"args": "go"},
            )
        )
        await answer(module, r'\+MIPLEXECUTE: 0,(\d+),3200,0,5500,2,"go"\r\n', "AT+MIPLEXECUTERSP=0,{mid},2")
        assert await execute is None

        observed = await app.call(
            "POST",
            "/nbiot/observe",
            {**imei, "obj_id": 3200, "obj_inst_id": 0, "cancel": "false", "pmin": 1, "pmax": 60},
        )
        assert observed is None
        mid = (await module.expect(r"\+MIPLOBSERVE: 0,(\d+),1,3200,0,-1\r\n", timeout=10)).group(1)
        await at(module, f'AT+MIPLNOTIFY=0,{mid},3200,0,5750,1,4,"hall",0,0')

        discovered = await app.call("GET", "/nbiot/discover", {**imei, "obj_id": 3200})
        assert discovered == [{"obj_inst_id": 0, "res_id": [5500, 5750, 9001]}]
        listed = await app.call("GET", "/nbiot/resources", imei)
        assert listed["item"] == [
            {"obj_id": 3200, "instances": [{"inst_id": 0, "resources": [5500, 5750, 9001]}]},
            {"obj_id": 10290, "instances": [{"inst_id": 0, "resources": [6005]}]},
        ]
        cancelled = await app.call(
            "POST", "/nbiot/observe", {**imei, "obj_id": 3200, "obj_inst_id": 0, "cancel": "true"}
        )
        assert cancelled is None and cloud.server.observations(f"{IMEI};{IMSI}") == []

        # A cached write, delivered at the module's next update; its history as OneNET shows it.
        expires = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 8 * 3600 + 600))
        cached = await app.call(
            "POST",
            "/nbiot/offline",
            {**imei, "obj_id": 3200, "obj_inst_id": 0, "mode": 2, "expired_time": expires, "trigger_msg": 2},
            {"data": [{"res_id": 5750, "val": "night"}, {"res_id": 9001, "val": "CAFE", "type": 1}]},
        )
        await at(module, "AT+MIPLUPDATE=0,3000,0")
        await module.expect(r"\+MIPLWRITE: 0,\d+,3200,0,5750,1,5,night,1\r\n", timeout=10)
        await answer(
            module, r"\+MIPLWRITE: 0,(\d+),3200,0,9001,6,\d+,CAFE,0\r\n", "AT+MIPLWRITERSP=0,{mid},2"
        )

        async def history() -> dict[str, Any]:
            return await app.call("GET", f"/nbiot/offline/history/{cached['uuid']}", imei)

        async with asyncio.timeout(10):
            while (item := await history())["send_status"] != 5:
                await asyncio.sleep(0.05)
        assert (
            item["cmd_uuid"] == cached["uuid"] and item["type"] == "write" and item["confirm_status"] == 204
        )
        page = await app.call("GET", "/nbiot/offline/history", {**imei, "start": "2000-01-01T00:00:00"})
        assert [i["cmd_uuid"] for i in page["items"]] == [cached["uuid"]]

        await cloud.server.reporting.drain()
        points = await app.call(
            "GET",
            f"/devices/{device_id}/datapoints",
            {"datastream_id": "3200_0_5750", "start": "2000-01-01T00:00:00"},
        )
        values = [p["value"] for p in points["datastreams"][0]["datapoints"]]
        assert values[0] == "hello" and "hall" in values

    await cloud.http.server.config.app.state.push.drain()
    for kind in ("plain", "encrypted"):
        got = cloud.receiver.plain if kind == "plain" else cloud.receiver.encrypted
        kinds = {(m["type"], m.get("ds_id")) for m in got}
        assert (2, None) in kinds and (1, "3200_0_5750") in kinds, (kind, got)
        assert any(m["type"] == 7 and m["cmd_id"] == cached["uuid"] for m in got), (kind, got)
