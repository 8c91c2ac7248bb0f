"""The route table of server/api/onenet/README.md against the served app: every row is served
(and answers its documented fields), and every OneNET route of the app has its row."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.integration import api_support
from tests.integration.api_support import IMEI, Api, create_onenet_device

api = api_support.api

TABLE = Path(__file__).resolve().parents[2] / "server" / "api" / "onenet" / "README.md"
ROW = re.compile(r"^\| (GET|POST|PUT|DELETE) \| (/[^ |]*) \|")
FUTURE = "2099-01-01T00:00:00"
WRITE = {"data": [{"res_id": 5850, "val": True}]}
COMMAND = {"imei": IMEI, "obj_id": 3311, "obj_inst_id": 0, "res_id": 5850}

# One request per row: query, body, and the `data` fields the row documents (None: the route
# needs the device online, so the answer is errno 2001 and its shape is checked end to end).
REQUESTS: dict[tuple[str, str], tuple[dict[str, Any], Any, set[str] | None]] = {
    ("POST", "/devices"): ({}, {"title": "t", "protocol": "LWM2M", "auth_info": {"1": "2"}}, {"device_id"}),
    ("GET", "/devices"): ({"page": 1}, None, {"total_count", "page", "per_page", "devices"}),
    ("GET", "/devices/status"): ({"devIds": "{device_id}"}, None, {"total_count", "devices"}),
    ("GET", "/devices/getbyimei"): ({"imei": IMEI}, None, {"device_id", "id", "protocol"}),
    ("GET", "/devices/{device_id}"): (
        {},
        None,
        {"id", "online", "protocol", "title", "desc", "create_time", "obsv", "obsv_st", "private", "tags"}
        | {"location", "other", "auth_info", "rg_id", "imsi", "imsi_old", "imsi_mt", "ack", "act_time"}
        | {"last_ct", "datastreams"},
    ),
    ("PUT", "/devices/{device_id}"): ({}, {"title": "renamed"}, set()),
    ("PUT", "/register_attr"): ({}, {"allow_dup": True}, set()),
    ("POST", "/devices/{device_id}/datapoints"): (
        {},
        {"datastreams": [{"id": "temp", "datapoints": [{"value": 1}]}]},
        set(),
    ),
    ("GET", "/devices/{device_id}/datapoints"): ({"datastream_id": "temp"}, None, {"count", "datastreams"}),
    ("GET", "/devices/datapoints"): ({"devIds": "{device_id}"}, None, {"devices"}),
    ("POST", "/devices/{device_id}/datastreams"): ({}, {"id": "hum", "unit": "%"}, {"ds_uuid"}),
    ("GET", "/devices/{device_id}/datastreams"): ({}, None, set()),
    ("GET", "/devices/{device_id}/datastreams/{stream}"): (
        {},
        None,
        {"id", "create_time", "update_at", "current_value"},
    ),
    ("GET", "/nbiot"): (COMMAND, None, None),
    ("POST", "/nbiot"): ({**COMMAND, "mode": 2}, WRITE, None),
    ("POST", "/nbiot/execute"): (COMMAND, {"args": ""}, None),
    ("POST", "/nbiot/observe"): ({**COMMAND, "cancel": "false"}, None, None),
    ("GET", "/nbiot/discover"): (COMMAND, None, None),
    ("GET", "/nbiot/resources"): ({"imei": IMEI}, None, None),
    ("GET", "/nbiot/offline"): ({**COMMAND, "expired_time": FUTURE}, None, {"uuid"}),
    ("POST", "/nbiot/offline"): ({**COMMAND, "mode": 2, "expired_time": FUTURE}, WRITE, {"uuid"}),
    ("POST", "/nbiot/execute/offline"): ({**COMMAND, "expired_time": FUTURE}, {"args": ""}, {"uuid"}),
    ("GET", "/nbiot/offline/history"): (
        {"imei": IMEI, "start": "2000-01-01T00:00:00"},
        None,
        {"total_count", "page", "per_page", "items"},
    ),
    ("GET", "/nbiot/offline/history/{uuid}"): (
        {"imei": IMEI},
        None,
        {"cmd_uuid", "type", "imei", "create_time", "valid_time", "expired_time", "send_time"}
        | {"trigger_msg", "send_status", "confirm_time", "confirm_status", "cmd_result", "feedback_msg"}
        | {"feedback_time", "remain"},
    ),
    ("PUT", "/nbiot/offline/cancel/{uuid}"): ({"imei": IMEI}, None, set()),
    ("PUT", "/nbiot/offline/cancel/all"): ({"imei": IMEI}, None, set()),
    ("GET", "/nbiot/device/psk"): ({"imei": IMEI}, None, {"psk"}),
    ("PUT", "/nbiot/device/psk"): ({"imei": IMEI}, {"key": "abcdefgh12"}, set()),
    ("GET", "/nbiot/device/accpsk"): ({"imei": IMEI}, None, {"key"}),
    ("PUT", "/nbiot/device/accpsk"): ({"imei": IMEI}, {"key": "abcdefgh12"}, set()),
    ("POST", "/nbiot/device/accpsk"): ({"imei": IMEI}, {"key": "abcdefgh12"}, set()),
    ("DELETE", "/devices/{device_id}"): ({}, None, set()),
}


def table_rows() -> list[tuple[str, str]]:
    rows = []
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows.append((match.group(1), match.group(2)))
    return rows


async def test_every_onenet_route_is_in_the_table_and_every_row_is_served(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    served = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if not path.startswith("/api/")
        for method in operations
    }
    rows = table_rows()
    assert len(rows) == len(set(rows)), "a row appears twice"
    assert set(rows) == served, f"missing rows: {served - set(rows)}; not served: {set(rows) - served}"
    assert set(REQUESTS) == served


async def test_each_row_answers_its_documented_fields(api: Api) -> None:
    device_id = await create_onenet_device(api, psk="abcd1234")
    values = {"device_id": device_id, "stream": "temp", "uuid": ""}
    assert set(REQUESTS) == set(table_rows())
    for (method, path), (query, body, fields) in REQUESTS.items():  # DELETE last

        def fill(text: str) -> str:
            return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], text)

        response = await api.client.request(
            method,
            fill(path),
            params={k: fill(v) if isinstance(v, str) else v for k, v in query.items()},
            json=body,
            headers=api.headers(),
        )
        assert response.status_code == 200, (method, path, response.text)
        answer = response.json()
        if fields is None:
            assert answer["errno"] == 2001, (method, path, answer)
            continue
        assert answer["errno"] == 0 and answer["error"] == "succ", (method, path, answer)
        data = answer.get("data")
        if fields:
            assert isinstance(data, dict) and fields <= set(data), (method, path, data)
        if (method, path) == ("GET", "/nbiot/offline"):
            values["uuid"] = data["uuid"]
