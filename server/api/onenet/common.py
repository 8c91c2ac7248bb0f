"""Shapes shared by the OneNET routes: the `{"errno", "error", "data"}` envelope, OneNET times
(`2018-03-08T17:30:00` in China Standard Time, UTC+8, when no offset is given), values as
OneNET shows them, and the real-time command parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import Depends, Query, Request

from lwm2m.path import Path
from server.api.errors import invalid
from server.services.offline_commands import OfflineCommands
from server.services.push import PushService

CST = timezone(timedelta(hours=8))

Imei = Annotated[str, Query(min_length=1, max_length=32, pattern=r"^\d+$")]
ObjId = Annotated[int, Query(ge=0, le=65535)]
OptId = Annotated[int | None, Query(ge=0, le=65535)]
Timeout = Annotated[int, Query(ge=5, le=40)]


def ok(data: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"errno": 0, "error": "succ"}
    if data is not None:
        body["data"] = data
    return body


def parse_time(text: str, name: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(f"{name} must look like 2018-03-08T17:30:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CST)
    return moment.timestamp()


def format_time(epoch: float | None, millis: bool = False) -> str | None:
    if epoch is None:
        return None
    moment = datetime.fromtimestamp(epoch, tz=UTC).astimezone(CST)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if millis else moment.strftime("%Y-%m-%d %H:%M:%S")


def onenet_value(value: Any) -> Any:
    """A stored JSON-safe value as OneNET shows it: Opaque as the array of its byte values (the
    one representation of every answer and push: OneNET pushes bytes so, and its cached read
    turns them into hex text only when asked with `bin2hex`), Time as epoch seconds."""
    if isinstance(value, dict):
        if "hex" in value:
            return list(bytes.fromhex(value["hex"]))
        if "time" in value:
            return int(value["time"])
        if "objlnk" in value:
            return value["objlnk"]
    return value


def target_path(obj_id: int, inst_id: int | None = None, res_id: int | None = None) -> Path:
    if inst_id is None and res_id is not None:
        raise invalid("res_id needs obj_inst_id")
    ids = [obj_id] + ([inst_id] if inst_id is not None else []) + ([res_id] if res_id is not None else [])
    return Path(*ids)


async def get_push(request: Request) -> PushService:
    push: PushService = request.app.state.push
    return push


async def get_offline(request: Request) -> OfflineCommands:
    offline: OfflineCommands = request.app.state.offline
    return offline


PushDep = Annotated[PushService, Depends(get_push)]
OfflineDep = Annotated[OfflineCommands, Depends(get_offline)]
