"""OneNET API fidelity (issue 15, issue 21): what an unmodified OneNET application relies on,
over real HTTP. The route-by-route shapes are in test_onenet_routes_table.py, the SDKs in
test_onenet_sdk_clients.py, the end-to-end flow in tests/e2e/test_onenet_compat.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from urllib.parse import quote

import httpx

from server.api.app import create_app
from server.api.onenet.nbiot import observe_attributes
from server.api.serve import serve_http
from server.services.push import PushService
from server.store.repository import StoredValue
from tests.conftest import ServerFactory
from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, ENDPOINT, IMEI, Api, create_onenet_device

api = api_support.api


def token(product_id: str, key: str, et: int, method: str = "sha1", res: str | None = None) -> str:
    """OneNET's `authorization` value, from its security-authentication document."""
    res = res or f"products/{product_id}"
    text = f"{et}\n{method}\n{res}\n2018-10-31".encode()
    sign = base64.b64encode(hmac.new(base64.b64decode(key), text, getattr(hashlib, method)).digest()).decode()
    return f"version=2018-10-31&res={quote(res, safe='')}&et={et}&method={method}&sign={quote(sign, safe='')}"


async def test_api_errors_are_http_200_on_onenet_routes_and_keep_their_status_on_api_v1(api: Api) -> None:
    await create_onenet_device(api)
    offline = await api.client.get("/nbiot", params={"imei": IMEI, "obj_id": 3}, headers=api.headers())
    assert (offline.status_code, offline.json()["errno"]) == (200, 2001)
    native = await api.client.get("/api/v1/devices/987654", headers=api.headers())
    assert (native.status_code, native.json()["errno"]) == (404, 3)
    no_route = await api.client.get("/no/such/route", headers=api.headers())
    assert no_route.status_code == 404


async def test_authorization_token_is_accepted_beside_api_key_and_refused_with_errno_1(api: Api) -> None:
    device_id = await create_onenet_device(api)
    product, key = api.product.id, api.product.master_key
    soon = int(time.time()) + 600
    for method in ("md5", "sha1", "sha256"):
        good = await api.client.get(
            f"/devices/{device_id}", headers={"authorization": token(product, key, soon, method)}
        )
        assert good.json()["errno"] == 0, good.text
    expired = await api.client.get(
        f"/devices/{device_id}", headers={"authorization": token(product, key, int(time.time()) - 1)}
    )
    assert (expired.status_code, expired.json()) == (200, {"errno": 1, "error": "auth failed: token expired"})
    other = await api.server.provisioning.create_product("other", "onenet")
    # A res naming another product, signed with this product's key: the signature does not match.
    forged = token(product, key, soon, res=f"products/{other.id}")
    wrong = await api.client.get(f"/devices/{device_id}", headers={"authorization": forged})
    assert wrong.json() == {"errno": 1, "error": "auth failed: token signature does not match"}
    # A right token of another product does not reach this product's device.
    foreign = {"authorization": token(other.id, other.master_key, soon)}
    assert (await api.client.get(f"/devices/{device_id}", headers=foreign)).json()["errno"] == 3
    by_imei = await api.client.get("/nbiot", params={"imei": IMEI, "obj_id": 3}, headers=foreign)
    assert by_imei.json()["errno"] == 1


async def test_keys_issued_before_the_onenet_format_keep_working_as_api_keys(api: Api) -> None:
    legacy = await api.server.provisioning.create_product(
        "legacy", "onenet", master_key="_L16US-legacy_key-0123"
    )
    device_id = await create_onenet_device(api)
    await api.server.provisioning.update_device(int(device_id), product_id=legacy.id)
    assert api.product.master_key.endswith("=") and len(api.product.master_key) == 28
    shown = await api.client.get(f"/devices/{device_id}", headers={"api-key": legacy.master_key})
    assert shown.json()["errno"] == 0
    signed = {
        "authorization": "version=2018-10-31&res=products%2F"
        + legacy.id
        + "&et=9999999999&method=sha1&sign=x"
    }
    refused = await api.client.get(f"/devices/{device_id}", headers=signed)
    assert refused.json()["errno"] == 1 and "not Base64" in refused.json()["error"]


async def test_onenet_routes_take_json_whatever_the_content_type_and_api_v1_stays_strict(api: Api) -> None:
    form = {**api.headers(), "content-type": "application/x-www-form-urlencoded"}
    body = b'{"title":"m","protocol":"LWM2M","auth_info":{"869975030000462":"460041234567891"}}'
    created = await api.client.post("/devices", content=body, headers=form)
    assert created.json()["errno"] == 0, created.text
    native = await api.client.post(
        "/api/v1/products",
        content=b'{"name":"x","carrier":"onenet"}',
        headers={"api-key": ADMIN_KEY, "content-type": "application/x-www-form-urlencoded"},
    )
    assert native.status_code == 400


async def test_the_manuals_write_example_with_a_trailing_comma_is_invalid_json_errno_5108(api: Api) -> None:
    """OneNET documents the write body as JSON and its own examples have no trailing comma; the
    manual's `],}` is not JSON, so it is refused as an invalid parameter (never a crash)."""
    await create_onenet_device(api)
    response = await api.client.post(
        "/nbiot",
        params={"imei": IMEI, "obj_id": 3200, "obj_inst_id": 0, "mode": 1},
        content=b'{"data":[{"res_id":5750,"val":"x"}],}',
        headers={**api.headers(), "content-type": "application/json"},
    )
    assert (response.status_code, response.json()["errno"]) == (200, 5108)


async def test_an_unknown_imei_is_errno_1_as_in_onenets_table(api: Api) -> None:
    response = await api.client.get(
        "/nbiot", params={"imei": "123456789012345", "obj_id": 3}, headers=api.headers()
    )
    assert response.json() == {"errno": 1, "error": "auth failed: the api-key does not match the imei"}


async def test_observe_takes_what_onenet_accepts(api: Api) -> None:
    await create_onenet_device(api)
    maybe = await api.client.post(
        "/nbiot/observe", params={"imei": IMEI, "obj_id": 3303, "cancel": "maybe"}, headers=api.headers()
    )
    assert maybe.json()["errno"] == 2001  # accepted (counts as false); only the device is offline
    assert observe_attributes(5700, 0, None, None, None, None) == {"pmin": 0}


async def test_user_named_streams_take_beijing_time_and_every_upload_form(api: Api) -> None:
    device_id = await create_onenet_device(api)
    body = {"datastreams": [{"id": "temp", "datapoints": [{"at": "2026-12-04T12:00:00", "value": 21.5}]}]}
    assert (
        await api.client.post(f"/devices/{device_id}/datapoints", json=body, headers=api.headers())
    ).json()["errno"] == 0
    (point,) = await api.server.store.datapoints(ENDPOINT, "temp")
    assert point.received_at == datetime(2026, 12, 4, 4, 0, tzinfo=UTC).timestamp()
    simple = await api.client.post(
        f"/devices/{device_id}/datapoints", params={"type": 3}, json={"hum": 40}, headers=api.headers()
    )
    timed = await api.client.post(
        f"/devices/{device_id}/datapoints",
        params={"type": 4},
        json={"door": {"2026-12-04T12:00:01": "open"}},
        headers=api.headers(),
    )
    assert simple.json()["errno"] == 0 and timed.json()["errno"] == 0
    points = await api.client.get(
        f"/devices/{device_id}/datapoints",
        params={"datastream_id": "temp,door", "start": "2026-12-04T11:00:00"},
        headers=api.headers(),
    )
    streams = {s["id"]: s["datapoints"] for s in points.json()["data"]["datastreams"]}
    assert streams == {
        "temp": [{"at": "2026-12-04 12:00:00.000", "value": 21.5}],
        "door": [{"at": "2026-12-04 12:00:01.000", "value": "open"}],
    }
    latest = await api.client.get("/devices/datapoints", params={"devIds": device_id}, headers=api.headers())
    (device,) = latest.json()["data"]["devices"]
    assert {s["id"] for s in device["datastreams"]} == {"temp", "hum", "door"}
    bad = await api.client.post(
        f"/devices/{device_id}/datapoints",
        json={"datastreams": [{"id": "a/b", "datapoints": [{"value": 1}]}]},
        headers=api.headers(),
    )
    assert bad.json()["errno"] == 5108


async def test_opaque_values_are_byte_arrays_in_every_answer(api: Api) -> None:
    device_id = await create_onenet_device(api)
    await api.server.store.record_values(
        ENDPOINT, [StoredValue("/3200/0/5750", "Opaque", {"hex": "00ff"})], "read"
    )
    points = await api.client.get(f"/devices/{device_id}/datapoints", headers=api.headers())
    assert points.json()["data"]["datastreams"][0]["datapoints"][0]["value"] == [0, 255]
    stream = await api.client.get(f"/devices/{device_id}/datastreams/3200_0_5750", headers=api.headers())
    assert stream.json()["data"]["current_value"] == [0, 255]


async def test_device_list_filters_and_the_batch_device_info_query(api: Api) -> None:
    first = await create_onenet_device(api)
    second = await create_onenet_device(api, imei="869975030000470", imsi="460041234567870")
    await api.client.put(
        f"/devices/{second}", json={"title": "pump", "tags": ["hall"]}, headers=api.headers()
    )
    listed = await api.client.get("/devices", params={"key_words": "pump"}, headers=api.headers())
    assert [d["id"] for d in listed.json()["data"]["devices"]] == [second]
    tagged = await api.client.get(
        "/devices", params={"tag": "hall", "online": "false"}, headers=api.headers()
    )
    assert tagged.json()["data"]["total_count"] == 1
    batch = await api.client.get(
        "/devices", params={"device_id": f"{first},{second}", "per_page": 1}, headers=api.headers()
    )
    data = batch.json()["data"]
    assert (data["total_count"], data["per_page"], len(data["devices"])) == (2, 1, 1)
    attr = await api.client.put("/register_attr", json={"allow_dup": True}, headers=api.headers())
    assert attr.json()["errno"] == 0
    product = api.server.provisioning.product(api.product.id)
    assert product is not None and product.attributes["register_attr"] == {"allow_dup": True}


async def test_the_push_aes_key_is_stored_and_survives_a_restart(api: Api) -> None:
    added = await api.client.post(
        "/api/v1/push-targets",
        json={"url": "http://127.0.0.1:9/push", "token": "t", "verify": False, "aes_key": "a" * 43},
        headers=api.headers(),
    )
    assert added.json()["encrypted"] is True
    restarted = PushService(api.server)
    await restarted.start()
    try:
        assert [t.aes_key for t in restarted.targets()] == ["a" * 43]
    finally:
        await restarted.stop()


async def test_refused_keys_on_onenet_routes_still_count_as_failed_attempts(
    server_factory: ServerFactory,
) -> None:
    server = await server_factory(api_key=ADMIN_KEY, auth_failure_limit=3, auth_failure_window=30)
    handle = await serve_http(create_app(server), "127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=handle.url) as client:
            for n in range(3):
                wrong = await client.get("/devices/1", headers={"api-key": f"guess-{n}"})
                assert (wrong.status_code, wrong.json()["errno"]) == (200, 1)
            blocked = await client.get("/devices/1", headers={"authorization": "version=x"})
            assert blocked.status_code == 429
    finally:
        await handle.stop()
