"""Migration 0006 (issue 13): the keys of `psk_credentials` move into the device rows, nothing
is lost, and the upgraded database serves the same keys through the device directory."""

from __future__ import annotations

import time

import sqlalchemy as sa

from server.lwm2m_server import Lwm2mServer
from server.settings import ListenerSettings
from server.store.database import Database
from tests.conftest import ServerFactory

LEGACY_PSKS = sa.table(
    "psk_credentials",
    sa.column("endpoint", sa.String),
    sa.column("identity", sa.String),
    sa.column("key", sa.Text),
    sa.column("encoding", sa.String),
    sa.column("created_at", sa.Float),
)
DEVICES = sa.table(
    "devices",
    sa.column("id", sa.Integer),
    sa.column("endpoint", sa.String),
    sa.column("carrier", sa.String),
    sa.column("product_id", sa.String),
    sa.column("imei", sa.String),
    sa.column("attributes", sa.JSON),
    sa.column("created_at", sa.Float),
    sa.column("obsv", sa.Boolean),
    sa.column("api_key", sa.String),
)
PRODUCTS = sa.table(
    "products",
    sa.column("id", sa.String),
    sa.column("name", sa.String),
    sa.column("carrier", sa.String),
    sa.column("master_key", sa.String),
    sa.column("attributes", sa.JSON),
    sa.column("created_at", sa.Float),
)


async def test_an_existing_database_upgrades_without_losing_devices_or_keys(
    database_url: str, server_factory: ServerFactory
) -> None:
    database = Database.connect(database_url)
    await database.migrate("0004")
    now = time.time()
    async with database.engine.begin() as conn:
        await conn.execute(
            PRODUCTS.insert().values(
                id="p1", name="ct", carrier="ctwing", master_key="mk", attributes={}, created_at=now
            )
        )
        await conn.execute(
            DEVICES.insert(),
            [
                # a carrier device: its key was in both stores, the attributes are the truth
                {
                    "endpoint": "869975030000461",
                    "carrier": "ctwing",
                    "product_id": "p1",
                    "imei": "869975030000461",
                    "attributes": {"psk": "ct-key-1"},
                    "created_at": now,
                    "obsv": True,
                    "api_key": "k1",
                },
                # an anonymous endpoint with a key only in the old table
                {
                    "endpoint": "seen-dev",
                    "carrier": "custom",
                    "product_id": None,
                    "imei": None,
                    "attributes": {},
                    "created_at": now,
                    "obsv": True,
                    "api_key": "k2",
                },
                # a OneNET device that never registered: the routes copied its access key
                {
                    "endpoint": None,
                    "carrier": "onenet",
                    "product_id": "p1",
                    "imei": "869975030000462",
                    "attributes": {"psk": "bs-key", "access_psk": "acc-key"},
                    "created_at": now,
                    "obsv": True,
                    "api_key": "k3",
                },
            ],
        )
        await conn.execute(
            LEGACY_PSKS.insert(),
            [
                {
                    "endpoint": "869975030000462;460041234567890",
                    "identity": "869975030000462",
                    "key": "acc-key",
                    "encoding": "string",
                    "created_at": now,
                },
                {
                    "endpoint": "869975030000461",
                    "identity": "869975030000461",
                    "key": "ct-key-1",
                    "encoding": "string",
                    "created_at": now,
                },
                {
                    "endpoint": "seen-dev",
                    "identity": "seen-id",
                    "key": "00112233",
                    "encoding": "hex",
                    "created_at": now,
                },
                {
                    "endpoint": "never-seen",
                    "identity": "never-id",
                    "key": "n-key",
                    "encoding": "string",
                    "created_at": now,
                },
            ],
        )
    await database.migrate()
    assert await database.current_revision() == "0007"
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
    assert "psk_credentials" not in tables
    await database.dispose()

    listeners = [
        ListenerSettings(name="default", host="127.0.0.1", port=0, dtls_port=None),
        ListenerSettings(name="ctwing", host="127.0.0.1", port=0, dtls_port=None, carrier="ctwing"),
        ListenerSettings(name="onenet", host="127.0.0.1", port=0, dtls_port=None, carrier="onenet"),
    ]
    server: Lwm2mServer = await server_factory(database_url, listeners=listeners)
    assert server.directory.psk_for("ctwing", b"869975030000461") == b"ct-key-1"
    assert server.directory.psk_for("default", b"869975030000461") is None
    assert server.directory.psk_for("default", b"seen-id") == bytes.fromhex("00112233")
    assert server.directory.psk_for("default", b"never-id") == b"n-key"
    endpoints = sorted(d.endpoint or "" for d in server.provisioning.devices())
    assert endpoints == ["", "869975030000461", "never-seen", "seen-dev"], "no row made up for a OneNET name"
    assert server.directory.psk_for("onenet", b"869975030000462") == b"acc-key"
