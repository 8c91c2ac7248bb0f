"""Products (a carrier, keys) and provisioned devices (IMEI, IMSI, auth code, observe flag, API key).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("master_key", sa.String(64), nullable=False, unique=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("devices") as batch:
        batch.alter_column("endpoint", existing_type=sa.String(255), nullable=True)
        batch.add_column(sa.Column("product_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("title", sa.String(255), nullable=True))
        batch.add_column(sa.Column("imei", sa.String(32), nullable=True))
        batch.add_column(sa.Column("imsi", sa.String(32), nullable=True))
        batch.add_column(sa.Column("auth_code", sa.String(32), nullable=True))
        batch.add_column(sa.Column("obsv", sa.Boolean, nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("api_key", sa.String(64), nullable=True))
        batch.create_index("ix_devices_product_id", ["product_id"])
        batch.create_index("ix_devices_imei", ["imei"])
        batch.create_unique_constraint("uq_devices_api_key", ["api_key"])


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_constraint("uq_devices_api_key", type_="unique")
        batch.drop_index("ix_devices_imei")
        batch.drop_index("ix_devices_product_id")
        for column in ("api_key", "obsv", "auth_code", "imsi", "imei", "title", "product_id"):
            batch.drop_column(column)
        batch.alter_column("endpoint", existing_type=sa.String(255), nullable=False)
    op.drop_table("products")
