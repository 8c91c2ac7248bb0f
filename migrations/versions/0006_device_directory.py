"""Device directory: one store of keys. Every PSK of `psk_credentials` moves into the attributes
of its endpoint's device row (a row of the open listener is created for an endpoint that had a
key but no row); the table is dropped. Keys already in a device's attributes (written by the
carrier routes, the ones the carrier listeners used) are kept as they are, and the copies those
routes made in the table (identity = the IMEI of a provisioned device holding a key) are dropped
with it, also for a device that never registered (no row is made up for its endpoint name).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import secrets
import time

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

KEY_ATTRIBUTES = ("psk", "access_psk")

_devices = sa.table(
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
_psks = sa.table(
    "psk_credentials",
    sa.column("endpoint", sa.String),
    sa.column("identity", sa.String),
    sa.column("key", sa.Text),
    sa.column("encoding", sa.String),
    sa.column("created_at", sa.Float),
)


def _carrier_copy(conn: sa.Connection, identity: str) -> bool:
    """Whether a key row is the copy the carrier routes made of a provisioned device's key (its
    identity is the IMEI of a device of a product, whose attributes hold the key already)."""
    rows = conn.execute(
        sa.select(_devices.c.attributes).where(_devices.c.imei == identity, _devices.c.product_id.is_not(None))
    )
    return any(any((attributes or {}).get(name) for name in KEY_ATTRIBUTES) for (attributes,) in rows)


def upgrade() -> None:
    conn = op.get_bind()
    for psk in conn.execute(sa.select(_psks)).mappings().all():
        key_attributes = {"psk": psk["key"], "psk_encoding": psk["encoding"], "psk_identity": psk["identity"]}
        device = (
            conn.execute(sa.select(_devices).where(_devices.c.endpoint == psk["endpoint"])).mappings().first()
        )
        if device is None and _carrier_copy(conn, psk["identity"]):
            continue
        if device is None:
            conn.execute(
                _devices.insert().values(
                    endpoint=psk["endpoint"],
                    carrier="custom",
                    attributes=key_attributes,
                    created_at=psk["created_at"] or time.time(),
                    obsv=True,
                    api_key=secrets.token_urlsafe(28)[:28],
                )
            )
            continue
        attributes = dict(device["attributes"] or {})
        if any(attributes.get(name) for name in KEY_ATTRIBUTES):
            continue
        attributes.update(key_attributes)
        conn.execute(_devices.update().where(_devices.c.id == device["id"]).values(attributes=attributes))
    op.drop_table("psk_credentials")


def downgrade() -> None:
    op.create_table(
        "psk_credentials",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False, unique=True),
        sa.Column("identity", sa.String(255), nullable=False, unique=True),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("encoding", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
