"""saved segments and the contact list's indexes

A user of the web app saves the contact list's filters under a name, for themselves or
shared with every user (each still sees only the contacts their role lets them see).

The list sorts by creation, fit, last activity and name, and searches names by their start:
without an index each of these read and sorted every contact (tens of seconds on 1M). A rep's
list, by score, reads their contacts in order of the owned copy of the rank. Stage,
temperature and fit grade, the usual filters, are counted together from one index.

Revision ID: 0008_saved_segments
Revises: 0007_nurture_sync_indexes
Create Date: 2026-11-22 21:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_saved_segments"
down_revision = "0007_nurture_sync_indexes"
branch_labels = None
depends_on = None


SORT_INDEXES = (
    ("ix_contacts_created_at", ["created_at", "id"]),
    ("ix_contacts_fit_score", ["fit_score", "id"]),
    ("ix_contacts_last_event_at", ["last_event_at", "id"]),
    ("ix_contacts_name", ["last_name", "first_name", "id"]),
    ("ix_contacts_first_name", ["first_name"]),
    ("ix_contacts_owner_rank", ["owner_id", "queue_rank", "id"]),
    ("ix_contacts_stage_temperature_grade", ["stage", "temperature", "fit_grade"]),
)


def upgrade() -> None:
    for name, columns in SORT_INDEXES:
        op.create_index(name, "contacts", columns)
    op.create_table(
        "saved_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], ondelete="CASCADE",
                                name=op.f("fk_saved_segments_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_segments")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_saved_segments_owner_id_name")),
    )


def downgrade() -> None:
    op.drop_table("saved_segments")
    for name, _columns in reversed(SORT_INDEXES):
        op.drop_index(name, table_name="contacts")
