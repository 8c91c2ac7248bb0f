"""OneNET cached commands (`/nbiot/offline...`): create (read, write, execute), history, one
command, cancel one or all. The rules live in `server.services.offline_commands`."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query

from lwm2m.path import Path
from server.api.deps import CurrentKey, ServerDep, device_by_imei
from server.api.errors import LOGIC_LIMIT, ApiError, not_found
from server.api.onenet.common import Imei, ObjId, OfflineDep, OptId, format_time, ok, parse_time, target_path
from server.api.onenet.nbiot import ExecuteBody, WriteBody
from server.services.offline_commands import OfflineCommand, OfflineCommands, TooManyCommands
from server.services.provisioning import Device

router = APIRouter()

TimeText = Annotated[str, Query(min_length=1, max_length=40)]
Retry = Annotated[int, Query(ge=0, le=10)]
Trigger = Annotated[int, Query(ge=1, le=7)]
Timeout = Annotated[int, Query(ge=5, le=40)]


def command_view(command: OfflineCommand) -> dict[str, Any]:
    """A cached command as OneNET's history shows it (`cmd_uuid`, `type`, `confirm_status`,
    `remain`, `feedback_time`, ...); `uuid` and `cmd_type` are kept beside them."""
    return {
        "cmd_uuid": command.uuid,
        "type": command.cmd_type,
        "remain": max(0, command.retry + 1 - command.attempts),
        "feedback_time": format_time(command.confirm_time),
        "uuid": command.uuid,
        "imei": command.imei,
        "cmd_type": command.cmd_type,
        "cmd_body": command.params,
        "create_time": format_time(command.created_at),
        "valid_time": format_time(command.valid_time),
        "expired_time": format_time(command.expired_time),
        "retry": command.retry,
        "attempts": command.attempts,
        "trigger_msg": command.trigger_msg,
        "send_status": command.send_status,
        "send_time": format_time(command.send_time),
        "confirm_time": format_time(command.confirm_time),
        "confirm_status": command.confirm_status,
        "cmd_result": command.confirm_body,
        "feedback_msg": command.confirm_body,
    }


async def _create(
    offline: OfflineCommands,
    device: Device,
    cmd_type: str,
    params: dict[str, Any],
    valid_time: str | None,
    expired_time: str,
    retry: int,
    timeout: int,
    trigger_msg: int,
) -> dict[str, Any]:
    valid = parse_time(valid_time, "valid_time") if valid_time else time.time()
    expired = parse_time(expired_time, "expired_time")
    try:
        command = await offline.create(
            device,
            cmd_type,
            params,
            valid_time=valid,
            expired_time=expired,
            retry=retry,
            timeout=timeout,
            trigger_msg=trigger_msg,
        )
    except TooManyCommands as exc:
        raise ApiError(LOGIC_LIMIT, f"system logic limit: {exc}", 409) from exc
    return ok({"uuid": command.uuid})


@router.get("/nbiot/offline")
async def offline_read(
    server: ServerDep,
    principal: CurrentKey,
    offline: OfflineDep,
    imei: Imei,
    obj_id: ObjId,
    expired_time: TimeText,
    obj_inst_id: OptId = None,
    res_id: OptId = None,
    valid_time: Annotated[str | None, Query(max_length=40)] = None,
    retry: Retry = 3,
    timeout: Timeout = 25,
    trigger_msg: Trigger = 7,
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    params = {"path": str(target_path(obj_id, obj_inst_id, res_id))}
    return await _create(
        offline, device, "read", params, valid_time, expired_time, retry, timeout, trigger_msg
    )


@router.post("/nbiot/offline")
async def offline_write(
    body: WriteBody,
    server: ServerDep,
    principal: CurrentKey,
    offline: OfflineDep,
    imei: Imei,
    obj_id: ObjId,
    obj_inst_id: Annotated[int, Query(ge=0, le=65535)],
    mode: Annotated[int, Query(ge=1, le=2)],
    expired_time: TimeText,
    valid_time: Annotated[str | None, Query(max_length=40)] = None,
    retry: Retry = 3,
    timeout: Timeout = 25,
    trigger_msg: Trigger = 7,
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    for item in body.data:
        item.value()  # a value its type refuses is refused now, not when the device comes
    params = {
        "path": str(Path(obj_id, obj_inst_id)),
        "values": {str(item.res_id): item.val for item in body.data},
        "types": {str(item.res_id): item.type for item in body.data if item.type is not None},
        "replace": mode == 1,
    }
    return await _create(
        offline, device, "write", params, valid_time, expired_time, retry, timeout, trigger_msg
    )


@router.post("/nbiot/execute/offline")
async def offline_execute(
    server: ServerDep,
    principal: CurrentKey,
    offline: OfflineDep,
    imei: Imei,
    obj_id: ObjId,
    obj_inst_id: Annotated[int, Query(ge=0, le=65535)],
    res_id: Annotated[int, Query(ge=0, le=65535)],
    expired_time: TimeText,
    body: ExecuteBody | None = None,
    valid_time: Annotated[str | None, Query(max_length=40)] = None,
    retry: Retry = 3,
    timeout: Timeout = 25,
    trigger_msg: Trigger = 7,
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    params = {"path": str(Path(obj_id, obj_inst_id, res_id)), "args": body.args if body else ""}
    return await _create(
        offline, device, "execute", params, valid_time, expired_time, retry, timeout, trigger_msg
    )


@router.get("/nbiot/offline/history")
async def history(
    server: ServerDep,
    principal: CurrentKey,
    offline: OfflineDep,
    imei: Imei,
    start: TimeText,
    end: Annotated[str | None, Query(max_length=40)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 10,
    sort: Annotated[str, Query(pattern=r"^(?i:asc|desc)$")] = "desc",
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    total, commands = await offline.history(
        device,
        start=parse_time(start, "start"),
        end=parse_time(end, "end") if end else None,
        newest_first=sort.lower() == "desc",
        limit=per_page,
        offset=(page - 1) * per_page,
    )
    return ok(
        {
            "total_count": total,
            "page": page,
            "per_page": per_page,
            "items": [command_view(c) for c in commands],
        }
    )


@router.get("/nbiot/offline/history/{uuid}")
async def history_item(
    uuid: str, server: ServerDep, principal: CurrentKey, offline: OfflineDep, imei: Imei
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    command = await offline.get(device, uuid)
    if command is None:
        raise not_found("command")
    return ok(command_view(command))


@router.put("/nbiot/offline/cancel/all")
async def cancel_all(
    server: ServerDep, principal: CurrentKey, offline: OfflineDep, imei: Imei
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    await offline.cancel_all(device)
    return ok()


@router.put("/nbiot/offline/cancel/{uuid}")
async def cancel(
    uuid: str, server: ServerDep, principal: CurrentKey, offline: OfflineDep, imei: Imei
) -> dict[str, Any]:
    device = device_by_imei(server, principal, imei)
    if not await offline.cancel(device, uuid):
        raise not_found("waiting command")
    return ok()
