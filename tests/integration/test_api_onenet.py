"""OneNET device routes, keys and error envelopes over real HTTP (platforms.md "Northbound HTTP API")."""

from __future__ import annotations

from tests.integration import api_support
from tests.integration.api_support import ADMIN_KEY, IMEI, IMSI, Api, create_onenet_device

api = api_support.api


async def test_create_device_returns_its_id_and_psk_and_get_shows_auth_info(api: Api) -> None:
    body = {"title": "meter", "protocol": "LWM2M", "auth_info": {IMEI: IMSI}, "psk": "abcd1234"}
    created = await api.client.post("/devices", json=body, headers=api.headers())
    assert created.json() == {
        "errno": 0,
        "error": "succ",
        "data": {"device_id": created.json()["data"]["device_id"], "psk": "abcd1234"},
    }
    device_id = created.json()["data"]["device_id"]
    shown = await api.client.get(f"/devices/{device_id}", headers=api.headers())
    data = shown.json()["data"]
    assert data["auth_info"] == {IMEI: IMSI} and data["online"] is False and data["rg_id"] == f"{IMEI};{IMSI}"
    by_imei = await api.client.get("/devices/getbyimei", params={"imei": IMEI}, headers=api.headers())
    assert by_imei.json()["data"]["device_id"] == device_id


async def test_keys_see_only_their_product_or_device(api: Api) -> None:
    device_id = await create_onenet_device(api)
    other = await api.server.provisioning.create_product("other", "onenet")
    hidden = await api.client.get(f"/devices/{device_id}", headers=api.headers(other.master_key))
    assert hidden.status_code == 200 and hidden.json()["errno"] == 3
    device = api.server.provisioning.device(int(device_id))
    assert device is not None and device.api_key is not None
    own = await api.client.get(f"/devices/{device_id}", headers=api.headers(device.api_key))
    assert own.status_code == 200
    admin = await api.client.get(f"/devices/{device_id}", headers=api.headers(ADMIN_KEY))
    assert admin.status_code == 200
    no_key = await api.client.get(f"/devices/{device_id}")
    assert no_key.status_code == 200 and no_key.json()["errno"] == 1
    bad_key = await api.client.get(f"/devices/{device_id}", headers={"api-key": "nope"})
    assert bad_key.status_code == 200 and bad_key.json() == {"errno": 1, "error": "auth failed"}


async def test_offline_device_answers_errno_2001_with_http_200(api: Api) -> None:
    await create_onenet_device(api)
    response = await api.client.get("/nbiot", params={"imei": IMEI, "obj_id": 3303}, headers=api.headers())
    assert response.status_code == 200 and response.json() == {"errno": 2001, "error": "device not online"}


async def test_bad_parameters_answer_errno_3_or_5108_with_http_200(api: Api) -> None:
    await create_onenet_device(api)
    missing = await api.client.get("/nbiot", params={"imei": IMEI}, headers=api.headers())
    assert missing.status_code == 200 and missing.json()["errno"] == 3
    out_of_range = await api.client.get(
        "/nbiot", params={"imei": IMEI, "obj_id": 3303, "timeout": 99}, headers=api.headers()
    )
    assert out_of_range.status_code == 200 and out_of_range.json()["errno"] == 5108
    short_psk = await api.client.post(
        "/devices", json={"title": "x", "auth_info": {"1": "2"}, "psk": "abc"}, headers=api.headers()
    )
    assert short_psk.status_code == 200 and short_psk.json()["errno"] == 5108


async def test_observe_attribute_rules_are_checked_before_anything_is_sent(api: Api) -> None:
    await create_onenet_device(api)
    from server.api.onenet.nbiot import observe_attributes

    assert observe_attributes(5700, 1, 30, 30.0, 10.0, 5.0) == {
        "pmin": 1,
        "pmax": 30,
        "gt": 30.0,
        "lt": 10.0,
        "st": 5.0,
    }
    for args in [
        (5700, 10, 5, None, None, None),
        (5700, 0, 30, None, None, None),
        (None, None, None, 3.0, None, None),
        (5700, None, None, 10.0, 20.0, None),
        (5700, None, None, 20.0, 10.0, 5.0),
    ]:
        try:
            observe_attributes(*args)
        except Exception as exc:
            assert getattr(exc, "errno", None) == 5108
        else:
            raise AssertionError(f"{args} accepted")


async def test_request_body_over_max_payload_is_refused_with_413(api: Api) -> None:
    response = await api.client.post(
        "/devices",
        content=b"{" + b" " * 5000 + b"}",
        headers={**api.headers(), "content-type": "application/json"},
    )
    assert response.status_code == 413 and response.json()["errno"] == 5108


async def test_cached_commands_are_limited_to_ten_and_can_be_cancelled(api: Api) -> None:
    await create_onenet_device(api)
    params = {
        "imei": IMEI,
        "obj_id": 3303,
        "obj_inst_id": 0,
        "res_id": 5700,
        "expired_time": "2099-01-01T00:00:00",
    }
    uuids = []
    for _ in range(10):
        response = await api.client.get("/nbiot/offline", params=params, headers=api.headers())
        assert response.json()["errno"] == 0
        uuids.append(response.json()["data"]["uuid"])
    eleventh = await api.client.get("/nbiot/offline", params=params, headers=api.headers())
    assert eleventh.json()["errno"] == 5006
    cancel = await api.client.put(
        f"/nbiot/offline/cancel/{uuids[0]}", params={"imei": IMEI}, headers=api.headers()
    )
    assert cancel.json()["errno"] == 0
    history = await api.client.get(
        "/nbiot/offline/history",
        params={"imei": IMEI, "start": "2000-01-01T00:00:00", "per_page": 100},
        headers=api.headers(),
    )
    statuses = sorted(item["send_status"] for item in history.json()["data"]["items"])
    assert history.json()["data"]["total_count"] == 10 and statuses == [1] * 9 + [2]
    await api.client.put("/nbiot/offline/cancel/all", params={"imei": IMEI}, headers=api.headers())
    again = await api.client.get("/nbiot/offline", params=params, headers=api.headers())
    assert again.json()["errno"] == 0
