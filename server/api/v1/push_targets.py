"""HTTP push receivers of the native API, `/api/v1/push-targets` and `/api/v1/push-deliveries`
(server/services/push.py delivers): the admin sees every receiver, a product key those of its
product."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from server.api.deps import CurrentKey, Principal
from server.api.errors import auth_failed, not_found
from server.api.onenet.common import PushDep
from server.api.v1.schemas import PushTargetCreate
from server.services.push import PushTarget

router = APIRouter()


def _push_visible(principal: Principal, target: PushTarget) -> bool:
    return principal.is_admin or (principal.product is not None and target.product_id == principal.product.id)


@router.get("/push-targets")
async def list_push_targets(principal: CurrentKey, push: PushDep) -> dict[str, Any]:
    return {"items": [t.as_dict() for t in push.targets() if _push_visible(principal, t)]}


@router.post("/push-targets")
async def add_push_target(body: PushTargetCreate, principal: CurrentKey, push: PushDep) -> dict[str, Any]:
    product_id = body.product_id
    if not principal.is_admin:
        if principal.product is None:
            raise auth_failed("auth failed: a device key cannot add push receivers", 403)
        product_id = principal.product.id
    target = await push.add_target(
        body.url, body.token, product_id=product_id, verify=body.verify, aes_key=body.aes_key
    )
    return target.as_dict()


@router.delete("/push-targets/{target_id}")
async def remove_push_target(target_id: int, principal: CurrentKey, push: PushDep) -> dict[str, Any]:
    target = next((t for t in push.targets() if t.id == target_id), None)
    if target is None or not _push_visible(principal, target):
        raise not_found("push target")
    await push.remove_target(target_id)
    return {"ok": True}


@router.get("/push-deliveries")
async def push_deliveries(
    principal: CurrentKey,
    push: PushDep,
    target_id: Annotated[int | None, Query(ge=0, le=2**31)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    visible = {t.id for t in push.targets() if _push_visible(principal, t)}
    rows = await push.deliveries(target_id, limit)
    return {"items": [r for r in rows if r["target_id"] in visible]}
