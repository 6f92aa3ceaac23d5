"""owner queue index: (owner, stage, temperature) covers a rep's work queue

A rep's queue reads their prospects one temperature at a time; with the temperature in the
index, that read never touches the wide contact rows. It replaces the (owner, stage) index,
whose every use it also serves.

Revision ID: 0005_owner_queue_index
Revises: 0004_sales
Create Date: 2026-11-22 16:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0005_owner_queue_index"
down_revision = "0004_sales"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_owner_stage_temperature", "contacts",
                    ["owner_id", "stage", "temperature"])
    op.drop_index("ix_contacts_owner_stage", table_name="contacts")


def downgrade() -> None:
    op.create_index("ix_contacts_owner_stage", "contacts", ["owner_id", "stage"])
    op.drop_index("ix_contacts_owner_stage_temperature", table_name="contacts")
