"""Encrypted HTTP push: the receiver's EncodingAESKey is kept with it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("push_targets") as batch:
        batch.add_column(sa.Column("aes_key", sa.String(43), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("push_targets") as batch:
        batch.drop_column("aes_key")
