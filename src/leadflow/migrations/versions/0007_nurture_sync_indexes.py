"""nurture sync indexes: the minute pass reads only what changed

The worker's nurture pass looks at contacts changed since its previous pass (by
``contacts.updated_at``) and at one track's members at a time (by ``enrollments.track_key``
and ``status``); without these indexes both were full scans under the write lock.

Revision ID: 0007_nurture_sync_indexes
Revises: 0006_content_nurture
Create Date: 2026-11-22 19:10:00
"""

from __future__ import annotations

from alembic import op

revision = "0007_nurture_sync_indexes"
down_revision = "0006_content_nurture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contacts_updated_at", "contacts", ["updated_at"])
    op.create_index("ix_enrollments_track_status", "enrollments",
                    ["track_key", "status", "contact_id"])


def downgrade() -> None:
    op.drop_index("ix_enrollments_track_status", table_name="enrollments")
    op.drop_index("ix_contacts_updated_at", table_name="contacts")
