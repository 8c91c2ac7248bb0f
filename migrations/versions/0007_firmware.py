"""Firmware over the air: firmware packages, update tasks and their devices.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "firmware",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("product_id", sa.String(32), nullable=True),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_firmware_product_id", "firmware", ["product_id"])
    op.create_table(
        "fota_tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("firmware_id", sa.Integer, nullable=False),
        sa.Column("product_id", sa.String(32), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
    )
    op.create_index("ix_fota_tasks_firmware_id", "fota_tasks", ["firmware_id"])
    op.create_table(
        "fota_devices",
        sa.Column("task_id", sa.Integer, primary_key=True),
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("fota_devices")
    op.drop_index("ix_fota_tasks_firmware_id", "fota_tasks")
    op.drop_table("fota_tasks")
    op.drop_index("ix_firmware_product_id", "firmware")
    op.drop_table("firmware")
