"""Cluster of server nodes: the owner node of each registered endpoint, and node heartbeats.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registration_owners",
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("registration_id", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.Float, nullable=False),
    )
    op.create_index("ix_registration_owners_node_id", "registration_owners", ["node_id"])
    op.create_table(
        "cluster_nodes",
        sa.Column("node_id", sa.String(64), primary_key=True),
        sa.Column("http_url", sa.Text, nullable=True),
        sa.Column("coap", sa.JSON, nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cluster_nodes")
    op.drop_index("ix_registration_owners_node_id", "registration_owners")
    op.drop_table("registration_owners")
