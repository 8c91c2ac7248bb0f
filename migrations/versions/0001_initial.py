"""Initial schema: devices, registrations, latest values, datapoints, observations, pending requests, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False, unique=True),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "registrations",
        sa.Column("registration_id", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.String(255), nullable=False, unique=True),
        sa.Column("listener", sa.String(64), nullable=False),
        sa.Column("host", sa.String(64), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("lifetime", sa.Integer, nullable=False),
        sa.Column("binding", sa.String(8), nullable=False),
        sa.Column("lwm2m_version", sa.String(8), nullable=False),
        sa.Column("queue_mode", sa.Boolean, nullable=False),
        sa.Column("sms", sa.String(64), nullable=True),
        sa.Column("root_path", sa.String(255), nullable=False),
        sa.Column("object_links", sa.Text, nullable=False),
        sa.Column("secure_identity", sa.String(255), nullable=True),
        sa.Column("registered_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "latest_values",
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("path", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "datapoints",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("path", sa.String(64), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("measured_at", sa.Float, nullable=True),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
    )
    op.create_index("ix_datapoints_endpoint_path_received", "datapoints", ["endpoint", "path", "received_at"])
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("paths", sa.JSON, nullable=False),
        sa.Column("composite", sa.Boolean, nullable=False),
        sa.Column("content_format", sa.Integer, nullable=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_observations_endpoint", "observations", ["endpoint"])
    op.create_table(
        "pending_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.Float, nullable=True),
    )
    op.create_index("ix_pending_requests_endpoint", "pending_requests", ["endpoint"])
    op.create_table(
        "events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("time", sa.Float, nullable=False),
        sa.Column("endpoint", sa.String(255), nullable=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_events_endpoint", "events", ["endpoint"])


def downgrade() -> None:
    for table in ("events", "pending_requests", "observations", "datapoints", "latest_values",
                  "registrations", "devices"):
        op.drop_table(table)
