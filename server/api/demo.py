"""Demo products for `testbed up`: one product per carrier, created once (idempotent).

The OneNET demo product's master key is the given API key (when given), so OneNET clients can
call the API with the key they were configured with.
"""

from __future__ import annotations

from server.lwm2m_server import Lwm2mServer
from server.services.provisioning import CARRIERS, Product

DEMO_FLAG = "demo"


async def ensure_demo_products(server: Lwm2mServer, api_key: str | None) -> dict[str, Product]:
    """The demo product of each carrier (created when missing)."""
    result: dict[str, Product] = {}
    for carrier in CARRIERS:
        existing = next(
            (p for p in server.provisioning.products(carrier) if p.attributes.get(DEMO_FLAG)), None
        )
        wanted_key = api_key if carrier == "onenet" else None
        if existing is None:
            holder = server.provisioning.product_by_key(wanted_key) if wanted_key else None
            existing = await server.provisioning.create_product(
                f"Demo {carrier}",
                carrier,
                master_key=wanted_key if holder is None else None,
                attributes={DEMO_FLAG: True},
            )
        elif (
            wanted_key
            and existing.master_key != wanted_key
            and server.provisioning.product_by_key(wanted_key) is None
        ):
            existing = await server.provisioning.update_product(existing.id, master_key=wanted_key)
        result[carrier] = existing
    return result
