"""The store on SQLite and on the local PostgreSQL: migrations, registrations, values, time series,
observations, the pending-request queue and the event log."""

from __future__ import annotations

import asyncio

from server.domain import Registration
from server.store.database import Database
from server.store.repository import ProvisioningRepository, Store, StoredValue
from server.store.tables import metadata


async def test_migrations_reach_head_and_match_the_table_definitions(database_url: str) -> None:
    database = Database.connect(database_url)
    try:
        await database.migrate()
        await database.migrate()  # idempotent
        assert await database.current_revision() == "0009"

        def table_columns(sync_conn):  # type: ignore[no-untyped-def]
            from sqlalchemy import inspect

            inspector = inspect(sync_conn)
            return {
                name: {c["name"] for c in inspector.get_columns(name)} for name in inspector.get_table_names()
            }

        async with database.engine.connect() as conn:
            found = await conn.run_sync(table_columns)
        for table in metadata.sorted_tables:
            assert {c.name for c in table.columns} == found[table.name], table.name
    finally:
        await database.dispose()


def _registration(endpoint: str, rid: str = "r1") -> Registration:
    return Registration(
        endpoint=endpoint,
        registration_id=rid,
        listener="default",
        host="127.0.0.1",
        port=5000,
        lifetime=300,
        binding="UQ",
        lwm2m_version="1.1",
        queue_mode=True,
        root_path="/",
        object_links="</3/0>",
    )


async def test_registrations_are_saved_replaced_and_deleted(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.save_registration(_registration("a", "r1"))
        await store.save_registration(_registration("a", "r2"))
        await store.save_registration(_registration("b", "r3"))
        loaded = {r.endpoint: r for r in await store.load_registrations()}
        assert loaded["a"].registration_id == "r2" and loaded["a"].queue_mode is True
        await store.delete_registration("a")
        assert [r.endpoint for r in await store.load_registrations()] == ["b"]
    finally:
        await store.close()


async def test_registrations_saved_together_share_one_transaction_and_the_last_one_wins(
    database_url: str,
) -> None:
    store = await Store.open(database_url)
    try:
        commits = store.writer.commits
        await asyncio.gather(
            store.save_registration(_registration("a", "r1")),
            store.save_registration(_registration("b", "r2")),
            store.save_registration(_registration("a", "r3")),
        )
        assert store.writer.commits == commits + 1
        loaded = {r.endpoint: r.registration_id for r in await store.load_registrations()}
        assert loaded == {"a": "r3", "b": "r2"}
    finally:
        await store.close()


async def test_devices_inserted_together_get_their_own_ids_in_order(database_url: str) -> None:
    store = await Store.open(database_url)
    repository = ProvisioningRepository(store)
    try:

        def row(endpoint: str, **extra: object) -> dict[str, object]:
            return {"endpoint": endpoint, "carrier": "custom", "created_at": 1.0, "attributes": {}, **extra}

        ids = await asyncio.gather(
            repository.insert_device(row("d1")),
            repository.insert_device(row("d2", imei="861234567890123")),  # other columns
            repository.insert_device(row("d3")),
        )
        assert len(set(ids)) == 3
        by_id = {device["id"]: device for device in await repository.devices()}
        assert [by_id[i]["endpoint"] for i in ids] == ["d1", "d2", "d3"]
        assert by_id[ids[1]]["imei"] == "861234567890123"
        # A duplicate endpoint fails alone; the good row of the same transaction is stored.
        results = await asyncio.gather(
            repository.insert_device(row("d1")), repository.insert_device(row("d4")), return_exceptions=True
        )
        assert isinstance(results[0], Exception) and isinstance(results[1], int)
        assert by_id.keys() < {device["id"] for device in await repository.devices()}
    finally:
        await store.close()


async def test_values_go_to_the_time_series_and_the_latest_value(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.record_values(
            "dev", [StoredValue("/3303/0/5700", "Float", 21.5)], "notify", received_at=100.0
        )
        await store.record_values(
            "dev",
            [StoredValue("/3303/0/5700", "Float", 22.0), StoredValue("/3/0/0", "String", "ACME")],
            "read",
            received_at=200.0,
        )
        await store.record_values("dev", [StoredValue("/19/0/0/0", "Opaque", {"hex": "00ff"}, 150.0)], "send")
        latest = await store.latest_values("dev")
        assert latest["/3303/0/5700"]["value"] == 22.0
        assert latest["/19/0/0/0"]["value"] == {"hex": "00ff"}
        points = await store.datapoints("dev", "/3303/0/5700")
        assert [(p.value, p.source) for p in points] == [(21.5, "notify"), (22.0, "read")]
        window = await store.datapoints("dev", "/3303/0/5700", start=150.0, end=250.0)
        assert [p.value for p in window] == [22.0]
        assert await store.count_datapoints("dev") == 4
    finally:
        await store.close()


async def test_concurrent_writes_are_grouped_and_all_committed(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await asyncio.gather(
            *(
                store.record_values(
                    f"dev{i % 10}", [StoredValue("/3303/0/5700", "Float", float(i))], "notify"
                )
                for i in range(500)
            )
        )
        assert await store.count_datapoints() == 500
        assert store.writer.commits < 500  # grouped
    finally:
        await store.close()


async def test_a_sequential_writer_never_waits_for_the_gather_window(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        for i in range(20):
            await store.record_values("dev", [StoredValue("/3303/0/5700", "Float", float(i))], "notify")
        assert store.writer.gathered == 0
        assert await store.count_datapoints("dev") == 20
    finally:
        await store.close()


def _signalling_write(running: asyncio.Event):  # type: ignore[no-untyped-def]
    """A write that sets `running` once its transaction is open; other writers then arrive while
    it commits."""
    from sqlalchemy import text

    def first(conn):  # type: ignore[no-untyped-def]
        running.set()
        conn.execute(text("SELECT 1"))

    return first


async def test_writes_arriving_during_a_commit_are_gathered_for_the_next_one(database_url: str) -> None:
    """A trickle of independent writers (a fleet's notifications, one by one): what arrives while
    a transaction commits waits the gather window, so the next transaction takes more at once."""
    store = await Store.open(database_url)
    try:
        first_running = asyncio.Event()
        first = _signalling_write(first_running)

        async def later_writers() -> None:
            await first_running.wait()
            await asyncio.gather(
                *(
                    store.record_values("dev", [StoredValue("/3303/0/5700", "Float", float(i))], "notify")
                    for i in range(3)
                )
            )

        await asyncio.gather(store.writer.run(first), later_writers())
        assert store.writer.gathered == 1
        assert await store.count_datapoints("dev") == 3
    finally:
        await store.close()


async def test_the_gather_window_closes_as_soon_as_enough_writes_wait(database_url: str) -> None:
    """With a window far longer than the test may take, the lingering commit still goes out once
    `gather_below` deferrable operations are queued, or as soon as one that is not arrives."""
    from sqlalchemy import text

    from server.store.database import GroupCommitter

    database = Database.connect(database_url)
    writer = GroupCommitter(database.engine, gather_window=600.0, gather_below=3)
    writer.start()
    try:
        first_running = asyncio.Event()
        first = _signalling_write(first_running)

        def later(conn):  # type: ignore[no-untyped-def]
            return conn.execute(text("SELECT 2")).scalar_one()

        async def writers(closing: bool) -> list[int]:
            await first_running.wait()
            # Arrives during the first commit, so the committer lingers for more.
            one = asyncio.ensure_future(writer.run(later, deferrable=True))
            await asyncio.sleep(0)  # let it queue while the first transaction is still open
            while writer.gathered == gathered:
                await asyncio.sleep(0.01)
            if closing:  # a write somebody waits for closes the window at once
                urgent = asyncio.ensure_future(writer.run(later))
                return [await one, await urgent]
            # else the third deferrable write does
            rest = asyncio.gather(writer.run(later, deferrable=True), writer.run(later, deferrable=True))
            return [await one, *await rest]

        for closing in (False, True):
            gathered = writer.gathered
            first_running.clear()
            results = await asyncio.wait_for(asyncio.gather(writer.run(first), writers(closing)), 30)
            assert results[1] == ([2, 2] if closing else [2, 2, 2])
            assert writer.gathered == gathered + 1
    finally:
        await writer.close()
        await database.dispose()


async def test_values_of_a_read_never_wait_for_the_gather_window(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        first_running = asyncio.Event()
        first = _signalling_write(first_running)

        async def read_values() -> None:
            await first_running.wait()
            await store.record_values("dev", [StoredValue("/3/0/0", "String", "ACME")], "read")

        await asyncio.gather(store.writer.run(first), read_values())
        assert store.writer.gathered == 0
        assert await store.count_datapoints("dev") == 1
    finally:
        await store.close()


async def test_a_failing_write_fails_alone(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        from sqlalchemy import text

        def broken(conn):  # type: ignore[no-untyped-def]
            conn.execute(text("INSERT INTO no_such_table VALUES (1)"))

        good = store.record_values("dev", [StoredValue("/1/0/1", "Integer", 1)], "read")
        results = await asyncio.gather(good, store.writer.run(broken), return_exceptions=True)
        assert results[0] is None and isinstance(results[1], Exception)
        assert await store.count_datapoints("dev") == 1
    finally:
        await store.close()


async def test_observations_and_pending_requests_persist(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        oid = await store.add_observation(
            "dev", ["/3303/0/5700"], composite=False, content_format=None, attributes={"pmin": 10}
        )
        rid = await store.enqueue_request("dev", "read", {"path": "/3/0"})
        await store.close()
        store = await Store.open(database_url)
        (obs,) = await store.observations("dev")
        assert (obs.id, obs.paths, obs.attributes) == (oid, ["/3303/0/5700"], {"pmin": 10})
        (pending,) = await store.pending_requests("dev")
        assert (pending.id, pending.operation, pending.params) == (rid, "read", {"path": "/3/0"})
        await store.complete_request(rid, "done", {"ok": True})
        assert await store.pending_requests("dev") == []
        await store.deactivate_observations("dev")
        assert await store.observations("dev") == []
    finally:
        await store.close()


async def test_event_log_is_written_in_order(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        for i in range(5):
            store.log_event("kind", "dev", {"i": i}, float(i))
        await store.writer.flush()
        events = await store.events("dev")
        assert [e["data"]["i"] for e in events] == [4, 3, 2, 1, 0]
    finally:
        await store.close()


async def test_a_late_value_enters_the_time_series_but_not_the_latest_value(database_url: str) -> None:
    store = await Store.open(database_url)
    try:
        await store.record_values(
            "dev", [StoredValue("/3303/0/5700", "Float", 22.0)], "notify", received_at=200.0
        )
        # Older by received time, then older by measured time (a Send with a timestamp).
        await store.record_values(
            "dev", [StoredValue("/3303/0/5700", "Float", 21.0)], "notify", received_at=150.0
        )
        await store.record_values(
            "dev", [StoredValue("/3303/0/5700", "Float", 20.0, 120.0)], "send", received_at=300.0
        )
        latest = await store.latest_values("dev")
        assert (latest["/3303/0/5700"]["value"], latest["/3303/0/5700"]["updated_at"]) == (22.0, 200.0)
        # In one transaction, the newest of several values of a path wins whatever their order.
        await asyncio.gather(
            store.record_values("dev", [StoredValue("/3/0/13", "Time", 900)], "notify", received_at=900.0),
            store.record_values("dev", [StoredValue("/3/0/13", "Time", 800)], "notify", received_at=800.0),
        )
        latest = await store.latest_values("dev")
        assert latest["/3/0/13"]["value"] == 900
        # Equal time: the later write wins.
        await store.record_values(
            "dev", [StoredValue("/3303/0/5700", "Float", 23.0)], "read", received_at=200.0
        )
        assert (await store.latest_values("dev"))["/3303/0/5700"]["value"] == 23.0
        points = await store.datapoints("dev", "/3303/0/5700")
        assert [p.value for p in points] == [22.0, 21.0, 20.0, 23.0]
        assert await store.count_datapoints("dev") == 6
    finally:
        await store.close()
