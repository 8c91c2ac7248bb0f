"""Northbound API: OneNET cached commands, HTTP push receivers and their delivery log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "offline_commands",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("device_id", sa.Integer, nullable=False),
        sa.Column("imei", sa.String(32), nullable=True),
        sa.Column("cmd_type", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("valid_time", sa.Float, nullable=False),
        sa.Column("expired_time", sa.Float, nullable=False),
        sa.Column("retry", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("timeout", sa.Float, nullable=False),
        sa.Column("trigger_msg", sa.Integer, nullable=False),
        sa.Column("send_status", sa.Integer, nullable=False),
        sa.Column("send_time", sa.Float, nullable=True),
        sa.Column("confirm_time", sa.Float, nullable=True),
        sa.Column("confirm_status", sa.Integer, nullable=True),
        sa.Column("confirm_body", sa.JSON, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_offline_commands_device_id", "offline_commands", ["device_id"])
    op.create_table(
        "push_targets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("product_id", sa.String(32), nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "push_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_push_deliveries_target_id", "push_deliveries", ["target_id"])


def downgrade() -> None:
    op.drop_index("ix_push_deliveries_target_id", "push_deliveries")
    op.drop_table("push_deliveries")
    op.drop_table("push_targets")
    op.drop_index("ix_offline_commands_device_id", "offline_commands")
    op.drop_table("offline_commands")
