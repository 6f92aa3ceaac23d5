"""content and nurture: the content library, forms, tracks, enrollments and sent email

Revision ID: 0006_content_nurture
Revises: 0005_owner_queue_index
Create Date: 2026-11-22 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_content_nurture"
down_revision = "0005_owner_queue_index"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("mail_status", sa.String(20), nullable=True))
    op.create_table(
        "content_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("maturity", sa.String(20), nullable=False),
        sa.Column("format", sa.String(30), nullable=False),
        sa.Column("premium", sa.Boolean(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_items")),
        sa.UniqueConstraint("key", name=op.f("uq_content_items_key")),
    )
    op.create_index("ix_content_items_path", "content_items", ["path"])
    op.create_table(
        "forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("headline", sa.String(300), nullable=False),
        sa.Column("pitch", sa.Text(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("max_fields", sa.Integer(), nullable=False),
        sa.Column("consent_label", sa.Text(), nullable=False),
        sa.Column("newsletter", sa.Boolean(), nullable=False),
        sa.Column("language", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["content_items.id"],
                                name=op.f("fk_forms_item_id_content_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forms")),
        sa.UniqueConstraint("key", name=op.f("uq_forms_key")),
    )
    op.create_table(
        "nurture_tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nurture_tracks")),
        sa.UniqueConstraint("key", name=op.f("uq_nurture_tracks_key")),
    )
    op.create_table(
        "enrollments",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("track_key", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.Float(), nullable=True),
        sa.Column("entered_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_enrollments_contact_id_contacts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint("contact_id", "track_key",
                            name=op.f("uq_enrollments_contact_id_track_key")),
    )
    op.create_index("ix_enrollments_due", "enrollments", ["next_at"],
                    sqlite_where=sa.text("status = 'active'"),
                    postgresql_where=sa.text("status = 'active'"))
    op.create_table(
        "mail_messages",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(300), nullable=False),
        sa.Column("template", sa.String(50), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("track_key", sa.String(100), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("form_key", sa.String(100), nullable=True),
        sa.Column("sender_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("claimed_at", sa.Float(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("subject", sa.String(500), nullable=True),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.Column("opened_at", sa.Float(), nullable=True),
        sa.Column("clicked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_mail_messages_contact_id_contacts")),
        sa.ForeignKeyConstraint(["item_id"], ["content_items.id"],
                                name=op.f("fk_mail_messages_item_id_content_items")),
        sa.ForeignKeyConstraint(["sender_id"], ["users.id"],
                                name=op.f("fk_mail_messages_sender_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_mail_messages_dedupe_key")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mail_messages_due", "mail_messages", ["not_before", "priority"],
                    sqlite_where=sa.text("status = 'queued'"),
                    postgresql_where=sa.text("status = 'queued'"))
    op.create_index("ix_mail_messages_contact", "mail_messages",
                    ["contact_id", "status", "claimed_at"])


def downgrade() -> None:
    op.drop_index("ix_mail_messages_contact", table_name="mail_messages")
    op.drop_index("ix_mail_messages_due", table_name="mail_messages")
    op.drop_table("mail_messages")
    op.drop_index("ix_enrollments_due", table_name="enrollments")
    op.drop_table("enrollments")
    op.drop_table("nurture_tracks")
    op.drop_table("forms")
    op.drop_index("ix_content_items_path", table_name="content_items")
    op.drop_table("content_items")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("mail_status")
