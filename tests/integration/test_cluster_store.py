"""The cluster's writes to the shared PostgreSQL: devices first seen by two nodes at once, ownership
claims in one statement, and the bookkeeping writer that does not wait for the WAL flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from server.cluster.owners import ClusterRepository
from server.services.provisioning import Provisioning
from server.store import tables as t
from server.store.database import GroupCommitter
from server.store.repository import Store

pytestmark = pytest.mark.postgres


@pytest.fixture
async def two_stores(postgres_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two nodes' stores on one database (each its own engine and writer)."""
    first = await Store.open(postgres_url)
    second = await Store.open(postgres_url, migrate=False)
    try:
        yield first, second
    finally:
        await second.close()
        await first.close()


def _node(store: Store) -> Provisioning:
    provisioning = Provisioning(store)
    provisioning.shared_store = True
    return provisioning


async def _device_rows(store: Store, endpoint: str) -> int:
    async with store.engine.connect() as conn:
        found = await conn.execute(select(func.count()).where(t.devices.c.endpoint == endpoint))
        return int(found.scalar_one())


async def test_two_nodes_seeing_a_new_endpoint_at_once_share_one_device_row(
    two_stores: tuple[Store, Store],
) -> None:
    a, b = (_node(store) for store in two_stores)
    endpoints = [f"86997503001{n:04d}" for n in range(40)]
    on_a, on_b = await asyncio.gather(
        asyncio.gather(*(a.ensure_endpoint(e) for e in endpoints)),
        asyncio.gather(*(b.ensure_endpoint(e) for e in reversed(endpoints))),
    )
    assert [d.id for d in on_a] == [d.id for d in reversed(on_b)]
    for endpoint in endpoints:
        assert await _device_rows(two_stores[0], endpoint) == 1


async def test_a_node_finds_the_device_another_node_provisioned_instead_of_an_anonymous_one(
    two_stores: tuple[Store, Store],
) -> None:
    a, b = (_node(store) for store in two_stores)
    product = await a.create_product("meters", "onenet")
    provisioned = await a.create_device(product_id=product.id, imei="869975030019001", endpoint="meter-1")
    seen = await b.ensure_endpoint("meter-1")
    assert (seen.id, seen.product_id, seen.imei) == (provisioned.id, product.id, "869975030019001")
    assert b.device_by_endpoint("meter-1") == seen


async def test_claims_answer_the_previous_owner_in_the_order_they_were_made(
    two_stores: tuple[Store, Store],
) -> None:
    repo = ClusterRepository(two_stores[0])
    repo.start()
    try:
        together = await asyncio.gather(
            repo.claim("ep-1", "A", "r1"), repo.claim("ep-1", "B", "r2"), repo.claim("ep-2", "A", "r3")
        )
        assert together == [None, "A", None]
        assert await repo.claim("ep-1", "C", "r4") == "B"
        assert await repo.owner_of("ep-1") == "C"
        assert await repo.owned_counts() == {"A": 1, "C": 1}
        await repo.release("ep-1", "C")
        assert await repo.owner_of("ep-1") is None
    finally:
        await repo.close()


async def test_only_the_bookkeeping_writer_commits_without_waiting_for_the_wal_flush(
    two_stores: tuple[Store, Store],
) -> None:
    def setting(conn: Connection) -> str:
        return str(conn.exec_driver_sql("SHOW synchronous_commit").scalar())

    soft = GroupCommitter(two_stores[0].engine, durable=False)
    soft.start()
    try:
        assert await soft.run(setting) == "off"
        assert await two_stores[0].writer.run(setting) == "on"
    finally:
        await soft.close()
