"""owner queue index: a rep's queue read in order from one index

A rep's queue lists their prospects hot first (the configured temperature order), then by
score. ``contacts.queue_rank`` copies an owned contact's engagement rank (NULL for unowned
ones), so the index (owner, temperature, rank, id, stage) returns a page in order without
reading contact rows or scores; the narrower (owner, stage) index stays, for counting a rep's
book.

Revision ID: 0005_owner_queue_index
Revises: 0004_sales
Create Date: 2026-11-22 16:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_owner_queue_index"
down_revision = "0004_sales"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("queue_rank", sa.Float(), nullable=True))
    op.execute("UPDATE contacts SET queue_rank = (SELECT s.engagement_rank FROM contact_scores s "
               "WHERE s.contact_id = contacts.id) WHERE owner_id IS NOT NULL")
    op.create_index("ix_contacts_owner_queue", "contacts",
                    ["owner_id", "temperature", "queue_rank", "id", "stage"])


def downgrade() -> None:
    op.drop_index("ix_contacts_owner_queue", table_name="contacts")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("queue_rank")
