"""OneNET data streams and data points of a device: upload (`POST /devices/{id}/datapoints`),
history and latest values (`GET /devices/{id}/datapoints`), the latest values of several devices
(`GET /devices/datapoints?devIds=`), the streams (`GET|POST /devices/{id}/datastreams`,
`GET /devices/{id}/datastreams/{ds}`).

A stream is either what the device reports (`<obj>_<inst>_<res>`, stored under the LwM2M path
`/obj/inst/res`) or one an application names and uploads to (stored under its own id, which
never starts with `/`). Both live in the same time series (`datapoints`, `latest_values`); an
uploaded point's `at` (Beijing time when it carries no zone) is its time. Streams created with
`POST .../datastreams` before any point are kept in the device attribute `datastreams`.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from server.api.deps import CurrentKey, ServerDep, expected_endpoint, visible_device
from server.api.errors import invalid, not_found
from server.api.onenet.common import format_time, ok, onenet_value, parse_time
from server.lwm2m_server import Lwm2mServer, check_datapoint_window
from server.services.errors import BadArgument
from server.services.provisioning import Device
from server.store.repository import StoredValue

router = APIRouter()

STREAM_ID = r"^[^/,\s]{1,64}$"
ATTR_STREAMS = "datastreams"
SOURCE = "api"
StreamId = Annotated[str, Field(pattern=STREAM_ID)]


def stream_path(stream: str) -> str:
    """`3303_0_5700` -> `/3303/0/5700`; any other id is stored as named."""
    parts = stream.split("_")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return "/" + "/".join(str(int(p)) for p in parts)
    return stream


def path_stream(path: str) -> str | None:
    """The stream id of a stored path: `/3303/0/5700` -> `3303_0_5700`, a named stream as is,
    None for LwM2M paths above resource level."""
    if not path.startswith("/"):
        return path
    parts = [p for p in path.split("/") if p]
    return "_".join(parts[:3]) if len(parts) >= 3 else None


def series_key(server: Lwm2mServer, device: Device) -> str:
    """Whose time series: the device's endpoint name (or its id when it has none)."""
    return expected_endpoint(server, device) or f"device:{device.id}"


def value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "json"


class Point(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: str | None = Field(default=None, max_length=40)
    value: Any


class StreamPoints(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: StreamId
    datapoints: list[Point] = Field(min_length=1, max_length=6000)


class Upload(BaseModel):
    datastreams: list[StreamPoints] = Field(min_length=1, max_length=1000)


def upload_points(body: Any, kind: int | None) -> list[tuple[str, Any, float]]:
    """(stream, value, at) of an upload in OneNET's forms: the `datastreams` body (type 1, the
    default), `{"ds": value}` (type 3) and `{"ds": {"at": value}}` (type 4)."""
    now = time.time()
    if kind in (None, 1):
        try:
            upload = Upload.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise invalid(f"{where}: {first['msg']}") from None
        return [
            (s.id, p.value, parse_time(p.at, "at") if p.at else now)
            for s in upload.datastreams
            for p in s.datapoints
        ]
    if not isinstance(body, dict) or not body:
        raise invalid("the body must be a JSON object of streams")
    points: list[tuple[str, Any, float]] = []
    for stream, value in body.items():
        if not isinstance(stream, str) or not stream or len(stream) > 64 or "/" in stream or "," in stream:
            raise invalid(f"datastream id {stream!r}")
        if kind == 3:
            points.append((stream, value, now))
        elif isinstance(value, dict):
            points.extend((stream, v, parse_time(str(at), "at")) for at, v in value.items())
        else:
            raise invalid("type 4 takes {stream: {at: value}}")
    return points


async def store_points(server: Lwm2mServer, device: Device, points: list[tuple[str, Any, float]]) -> None:
    key = series_key(server, device)
    for stream, value, at in points:
        stored = StoredValue(stream_path(stream), value_type(value), value, at)
        await server.store.record_values(key, [stored], SOURCE, received_at=at)


@router.post("/devices/{device_id}/datapoints")
async def upload(
    device_id: str,
    body: dict[str, Any],
    server: ServerDep,
    principal: CurrentKey,
    type: Annotated[int | None, Query(ge=1, le=5)] = None,
) -> dict[str, Any]:
    """Upload datapoints. Stores values under any datastream id the application chooses: OneNET's
    `datastreams[{id, datapoints[{at, value}]}]` body and its simple forms (type 3 `{stream:
    value}`, type 4 `{stream: {at: value}}`); an `at` without a zone is Beijing time."""
    device = visible_device(server, principal, device_id)
    if type in (2, 5):
        raise invalid("type 2 and 5 (binary and text forms) are not JSON: use type 1, 3 or 4")
    await store_points(server, device, upload_points(body, type))
    return ok()


async def latest_streams(server: Lwm2mServer, device: Device) -> dict[str, dict[str, Any]]:
    """stream id -> its latest stored value `{"value", "updated_at"}`."""
    latest = await server.latest_values(series_key(server, device))
    return {ds: v for path, v in latest.items() if (ds := path_stream(path)) is not None}


@router.get("/devices/{device_id}/datapoints")
async def datapoints(
    device_id: str,
    server: ServerDep,
    principal: CurrentKey,
    datastream_id: Annotated[str | None, Query(max_length=1000)] = None,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int | None, Query(ge=1, le=6000)] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^\d+$")] = None,
) -> dict[str, Any]:
    device = visible_device(server, principal, device_id)
    key = series_key(server, device)
    wanted = [s.strip() for s in datastream_id.split(",") if s.strip()] if datastream_id else None
    streams: dict[str, list[dict[str, Any]]] = {}
    next_cursor: str | None = None
    count = 0
    if start or end or cursor or limit:
        size = limit or 100
        start_at = parse_time(start, "start") if start else None
        end_at = parse_time(end, "end") if end else None
        after_id = int(cursor) if cursor else None
        try:
            check_datapoint_window(start_at, end_at, after_id)
        except BadArgument as exc:
            raise invalid(str(exc)) from None
        points = []
        for stream in wanted or [None]:  # type: ignore[list-item]
            points.extend(
                await server.store.datapoints(
                    key,
                    stream_path(stream) if stream else None,
                    start=start_at,
                    end=end_at,
                    after_id=after_id,
                    limit=size + 1,
                )
            )
        points.sort(key=lambda p: p.id)
        if len(points) > size:
            points = points[:size]
            next_cursor = str(points[-1].id)
        for point in points:
            ds = path_stream(point.path)
            if ds is None:
                continue
            streams.setdefault(ds, []).append(
                {"at": format_time(point.received_at, millis=True), "value": onenet_value(point.value)}
            )
            count += 1
    else:
        for ds, value in sorted((await latest_streams(server, device)).items()):
            if wanted is not None and ds not in wanted:
                continue
            streams[ds] = [
                {"at": format_time(value["updated_at"], millis=True), "value": onenet_value(value["value"])}
            ]
            count += 1
    data: dict[str, Any] = {
        "count": count,
        "datastreams": [{"id": ds, "datapoints": points} for ds, points in streams.items()],
    }
    if next_cursor is not None:
        data["cursor"] = next_cursor
    return ok(data)


@router.get("/devices/datapoints")
async def devices_latest(
    server: ServerDep, principal: CurrentKey, devIds: Annotated[str, Query(min_length=1, max_length=12000)]
) -> dict[str, Any]:
    """Latest values of several devices. `devIds` lists the device ids (comma-separated); the answer has
    each device's datastreams with their newest value, as OneNET's batch datapoint query."""
    ids = [part.strip() for part in devIds.split(",") if part.strip()]
    if len(ids) > 100:
        raise invalid("at most 100 devIds")
    devices = []
    for raw in ids:
        device = server.provisioning.device(int(raw)) if raw.isdigit() else None
        if device is None or not principal.can_see(device):
            continue
        latest = await latest_streams(server, device)
        devices.append(
            {
                "id": str(device.id),
                "title": device.title,
                "datastreams": [
                    {
                        "id": ds,
                        "at": format_time(v["updated_at"], millis=True),
                        "value": onenet_value(v["value"]),
                    }
                    for ds, v in sorted(latest.items())
                ],
            }
        )
    return ok({"devices": devices})


class StreamCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: StreamId
    tags: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100)
    unit: str | None = Field(default=None, max_length=64)
    unit_symbol: str | None = Field(default=None, max_length=64)


def stream_view(stream: str, meta: dict[str, Any] | None, latest: dict[str, Any] | None) -> dict[str, Any]:
    meta = meta or {}
    view: dict[str, Any] = {
        "id": stream,
        "create_time": meta.get("create_time") or (format_time(latest["updated_at"]) if latest else None),
        "update_at": format_time(latest["updated_at"]) if latest else None,
        "current_value": onenet_value(latest["value"]) if latest else None,
    }
    for name in ("tags", "unit", "unit_symbol"):
        if meta.get(name) is not None:
            view[name] = meta[name]
    return view


@router.post("/devices/{device_id}/datastreams")
async def create_stream(
    device_id: str, body: StreamCreate, server: ServerDep, principal: CurrentKey
) -> dict[str, Any]:
    """Create a datastream. Adds a user-named datastream (`id`, optional `unit`, `unit_symbol`) to the
    device, as OneNET's datastream add."""
    device = visible_device(server, principal, device_id)
    declared = dict(device.attributes.get(ATTR_STREAMS) or {})
    if body.id in declared:
        raise invalid(f"datastream {body.id} exists")
    meta = body.model_dump(exclude_none=True, exclude={"id"})
    meta["create_time"] = format_time(time.time())
    declared[body.id] = meta
    await server.provisioning.update_device(
        device.id, attributes={**device.attributes, ATTR_STREAMS: declared}
    )
    return ok({"ds_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"device/{device.id}/datastreams/{body.id}"))})


@router.get("/devices/{device_id}/datastreams")
async def streams(
    device_id: str,
    server: ServerDep,
    principal: CurrentKey,
    datastream_ids: Annotated[str | None, Query(max_length=1000)] = None,
) -> dict[str, Any]:
    """List a device's datastreams. Each with `id`, `create_time`, `update_at` and `current_value`, as
    OneNET documents them."""
    device = visible_device(server, principal, device_id)
    declared = device.attributes.get(ATTR_STREAMS) or {}
    latest = await latest_streams(server, device)
    names = sorted(set(declared) | set(latest))
    if datastream_ids:
        wanted = {s.strip() for s in datastream_ids.split(",")}
        names = [n for n in names if n in wanted]
    return ok([stream_view(n, declared.get(n), latest.get(n)) for n in names])


@router.get("/devices/{device_id}/datastreams/{stream}")
async def stream(device_id: str, stream: str, server: ServerDep, principal: CurrentKey) -> dict[str, Any]:
    """One datastream of a device. Its `id`, `create_time`, `update_at` and `current_value`, as OneNET
    documents them."""
    device = visible_device(server, principal, device_id)
    declared = device.attributes.get(ATTR_STREAMS) or {}
    latest = (await latest_streams(server, device)).get(stream)
    if stream not in declared and latest is None:
        raise not_found("datastream")
    return ok(stream_view(stream, declared.get(stream), latest))
