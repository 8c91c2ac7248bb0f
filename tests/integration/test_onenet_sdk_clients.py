"""OneNET's application clients, unchanged, against the private cloud (issue 21).

1. The official PHP SDK (`OneNetApi.php` of cm-heclouds/PHPSDK). PHP is not on the test machines,
   so each SDK call is sent here exactly as the SDK builds it, as raw bytes on a TCP socket: its
   base URL ends in `/` and every path starts with `/` (so `//devices/1`), curl's
   `CURLOPT_POSTFIELDS` puts the PHP `json_encode` of the data (`[]` for no data, also on GET and
   DELETE) in the body with curl's default `Content-Type: application/x-www-form-urlencoded`, and
   the only header the SDK adds is `api-key`. Answers are read by the SDK's `_call` rule: a
   decoded body whose `errno` is empty (0) gives `data` (or TRUE without one); otherwise the call
   fails with `errno`/`error`. Times are PHP `date('Y-m-d\\TH:i:s')`, the server's zone: Beijing.
2. The PyPI client `pyonenet` (0.0.1): its functions post to the built-in `http://api.heclouds.com`
   with `requests`; the host is mapped to the test server by `HTTP_PROXY` (requests then sends the
   absolute-form target, which the server serves by its path). Nothing of the package is patched.
3. The PyPI client `OneNetAPI` (0.4): its URL is settable (`set_get_url`) and it authenticates
   with OneNET's `authorization` token; `Getdata` is driven as is. Its other call, `Pushdata`,
   posts to `/cmds` (OneNET's command API for EDP/MQTT devices), which an LwM2M cloud does not
   serve: it is not driven here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.integration import api_support
from tests.integration.api_support import IMEI, IMSI, Api

api = api_support.api

BEIJING = timezone(timedelta(hours=8))


def php_json(data: Any) -> bytes:
    """PHP json_encode: compact, `/` escaped, non-ASCII as \\uXXXX; an empty array is `[]`."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()


def php_date(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=BEIJING).strftime("%Y-%m-%dT%H:%M:%S")


class PhpSdk:
    """The requests of OneNetApi.php, sent as the SDK sends them; answers read by its `_call`."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url.rstrip("/") + "/"  # the SDK's default base URL ends in "/"
        self.key = key
        self.error_no = 0
        self.error: str | None = None
        self.sent: list[bytes] = []

    async def _rawcall(self, api: str, method: str = "GET", data: Any = None) -> bytes:
        url = self.base_url + (api if api.startswith("/") else "/" + api)
        parts = urlsplit(url)
        target = url[len(f"{parts.scheme}://{parts.netloc}") :]
        body = php_json([] if data is None else data)
        head = (
            f"{method} {target} HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n"
            "Accept: */*\r\n"
            f"api-key: {self.key}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Connection: close\r\n\r\n"
        )
        request = head.encode() + body
        self.sent.append(request)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(request)
        await writer.drain()
        answer = await reader.read()
        writer.close()
        _head, _, payload = answer.partition(b"\r\n\r\n")
        return payload

    async def _call(self, api: str, method: str = "GET", data: Any = None) -> Any:
        self.error_no, self.error = 0, None
        raw = await self._rawcall(api, method, data)
        try:
            ret = json.loads(raw)
        except ValueError:
            return False
        if not ret:
            return False
        if not ret.get("errno"):
            return ret["data"] if "data" in ret else True
        self.error_no = ret["errno"]
        self.error = ret.get("error")
        return False

    async def device(self, device_id: str) -> Any:
        return await self._call(f"/devices/{device_id}")

    async def device_list(self, page: int = 1, page_size: int = 30, key_word: str | None = None) -> Any:
        params: dict[str, Any] = {"page": page, "per_page": page_size}
        if key_word is not None:
            params["key_words"] = key_word
        return await self._call("/devices?" + urlencode(params))

    async def device_add(self, device: dict[str, Any]) -> Any:
        return await self._call("/devices", "POST", device)

    async def device_edit(self, device_id: str, device: dict[str, Any]) -> Any:
        return await self._call(f"/devices/{device_id}", "PUT", device)

    async def device_delete(self, device_id: str) -> Any:
        return await self._call(f"/devices/{device_id}", "DELETE")

    async def datastream(self, device_id: str, datastream_id: str) -> Any:
        return await self._call(f"/devices/{device_id}/datastreams/{datastream_id.replace(' ', '+')}")

    async def datastream_of_dev(self, device_id: str) -> Any:
        return await self._call(f"/devices/{device_id}/datastreams")

    async def datastream_add(self, device_id: str, datastream: dict[str, Any]) -> Any:
        return await self._call(f"/devices/{device_id}/datastreams", "POST", datastream)

    async def datapoint_add(self, device_id: str, datastream_id: str, datas: dict[float, Any]) -> Any:
        return await self.datapoint_multi_add(device_id, {datastream_id: datas})

    async def datapoint_multi_add(self, device_id: str, datas: dict[str, dict[float, Any]]) -> Any:
        streams = [
            {"id": ds, "datapoints": [{"at": php_date(t), "value": v} for t, v in points.items()]}
            for ds, points in datas.items()
        ]
        return await self._call(f"/devices/{device_id}/datapoints", "POST", {"datastreams": streams})

    async def datapoint_get(self, device_id: str, datastream_id: str, start_time: str | None = None) -> Any:
        return await self.datapoint_multi_get(device_id, start_time, datastream_ids=[datastream_id])

    async def datapoint_multi_get(
        self, device_id: str, start_time: str | None = None, datastream_ids: list[str] | None = None
    ) -> Any:
        params: dict[str, Any] = {}
        if datastream_ids:
            params["datastream_id"] = ",".join(datastream_ids)
        if start_time:
            params["start"] = start_time
        return await self._call(f"/devices/{device_id}/datapoints?" + urlencode(params))


async def test_php_sdk_calls_work_as_the_sdk_sends_and_reads_them(api: Api) -> None:
    sdk = PhpSdk(api.http.url, api.product.master_key)
    added = await sdk.device_add({"title": "meter", "protocol": "LWM2M", "auth_info": {IMEI: IMSI}})
    assert added is not False, (sdk.error_no, sdk.error)
    device_id = added["device_id"]
    assert sdk.sent[-1].startswith(b"POST //devices HTTP/1.1\r\n")
    assert b"Content-Type: application/x-www-form-urlencoded" in sdk.sent[-1]

    shown = await sdk.device(device_id)
    assert shown["id"] == device_id and shown["title"] == "meter" and shown["protocol"] == "LwM2M"
    assert await sdk.device_edit(device_id, {"title": "meter-2", "desc": "hall"}) is True
    listed = await sdk.device_list(1, 30, "meter-2")
    assert listed["total_count"] == 1 and listed["devices"][0]["id"] == device_id

    assert await sdk.datastream_add(device_id, {"id": "temp", "unit": "celsius", "unit_symbol": "C"})
    now = int(time.time())
    assert await sdk.datapoint_add(device_id, "temp", {now - 60: 21.5, now - 30: 22.0}) is True
    assert await sdk.datapoint_multi_add(device_id, {"hum": {now - 20: 40}, "door": {now - 10: "open"}})
    stream = await sdk.datastream(device_id, "temp")
    assert stream["id"] == "temp" and stream["current_value"] == 22.0 and stream["unit"] == "celsius"
    streams = {s["id"]: s for s in await sdk.datastream_of_dev(device_id)}
    assert set(streams) == {"temp", "hum", "door"} and streams["door"]["current_value"] == "open"

    start = php_date(now - 3600)
    points = await sdk.datapoint_get(device_id, "temp", start)
    (temp,) = points["datastreams"]
    assert [p["value"] for p in temp["datapoints"]] == [21.5, 22.0]
    # `at` without a zone was Beijing time: it comes back as the same Beijing wall clock.
    assert temp["datapoints"][0]["at"].startswith(php_date(now - 60).replace("T", " "))
    multi = await sdk.datapoint_multi_get(device_id, start, ["hum", "door"])
    assert {s["id"]: s["datapoints"][0]["value"] for s in multi["datastreams"]} == {"hum": 40, "door": "open"}

    assert await sdk.device_delete(device_id) is True
    assert await sdk.device(device_id) is False and sdk.error_no == 3


async def test_php_sdk_reads_an_error_errno_from_an_http_200_answer(api: Api) -> None:
    sdk = PhpSdk(api.http.url, "not-a-key")
    assert await sdk.device("1") is False
    assert (sdk.error_no, sdk.error) == (1, "auth failed")


def onenet_token(product_id: str, access_key: str, et: int, method: str = "sha1") -> str:
    """OneNET's `authorization` value, written from its security-authentication document."""
    res = f"products/{product_id}"
    version = "2018-10-31"
    text = f"{et}\n{method}\n{res}\n{version}".encode()
    digest = hmac.new(base64.b64decode(access_key), text, getattr(hashlib, method)).digest()
    sign = base64.b64encode(digest).decode()
    return f"version={version}&res={quote(res, safe='')}&et={et}&method={method}&sign={quote(sign, safe='')}"


@pytest.fixture
def proxied(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """`api.heclouds.com`, built into the clients, reaches the test server (as an HTTP proxy)."""
    monkeypatch.setenv("HTTP_PROXY", api.http.url)
    monkeypatch.setenv("http_proxy", api.http.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    return api


async def test_pyonenet_uploads_and_queries_a_stream_at_its_built_in_host(proxied: Api) -> None:
    import pyonenet

    device_id = await api_support.create_onenet_device(proxied)
    triad = {"product_id": proxied.product.id, "device_id": device_id, "api_key": proxied.product.master_key}
    uploaded = await asyncio.to_thread(
        pyonenet.upload_datapoint, triad, [{"id": "ch02", "data": 17}, {"id": "ch03", "data": "on"}]
    )
    assert uploaded == {"errno": 0, "error": "succ"}
    queried = await asyncio.to_thread(pyonenet.query_datastream, triad, "ch02")
    assert (
        queried["errno"] == 0 and queried["data"]["id"] == "ch02" and queried["data"]["current_value"] == 17
    )


async def test_onenetapi_reads_datapoints_with_an_authorization_token(api: Api) -> None:
    from OneNetAPI import OneNet

    device_id = await api_support.create_onenet_device(api)
    sdk = PhpSdk(api.http.url, api.product.master_key)
    assert await sdk.datapoint_add(device_id, "level", {int(time.time()) - 5: 3.5}) is True

    client = OneNet()
    client.set_get_url(f"{api.http.url}/devices")
    client.set_get_device(device_id)
    client.set_datastream_id("level")
    client.set_limit(10)
    client.set_time_delta_milliseconds(24 * 3600 * 1000)
    client.set_authorization(onenet_token(api.product.id, api.product.master_key, int(time.time()) + 600))
    values = await asyncio.to_thread(client.Getdata)
    assert values is not None and values[0] == 3.5

    expired = onenet_token(api.product.id, api.product.master_key, int(time.time()) - 1)
    client.set_authorization(expired)
    assert await asyncio.to_thread(client.Getdata) is None  # errno 1: the client prints the error


def test_product_keys_are_onenet_access_keys() -> None:
    from server.services.provisioning import new_access_key

    key = new_access_key()
    assert len(key) == 28 and key.endswith("=") and len(base64.b64decode(key, validate=True)) == 20
    assert new_access_key() != key
