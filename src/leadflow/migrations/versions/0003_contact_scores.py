"""contact scores: engagement and signals move to a narrow table of their own

A full rescore rewrites every contact's engagement, breakdown, caps, recycle baseline and
signals. Kept on the wide contacts row (attributes, consent, fit detail, qualification...),
each rewritten score rewrote the whole row and four indexes on engagement_rank. They now live
in ``contact_scores`` (one row per contact), with one rank index; ``rescored`` fingerprints what
the last rescore wrote (NULL for rows written any other way, as every migrated row is).

The stage, temperature and grade filters of contact lists keep an index each on contacts, and
a partial index finds the (few) recycled contacts without scanning wide rows. On SQLite the
rebuilt contacts table is AUTOINCREMENT: the id of a merged (deleted) contact, which webhooks
may have announced, is never given to another.

Revision ID: 0003_contact_scores
Revises: 0002
Create Date: 2026-11-22 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_contact_scores"
down_revision = "0002"
branch_labels = None
depends_on = None

SCORE_COLUMNS = ("engagement_score", "engagement_t0", "engagement_rank", "engagement_breakdown",
                 "engagement_caps", "recycle_baseline", "signals")
OLD_INDEXES = {"ix_contacts_stage_rank": ["stage", "engagement_rank"],
               "ix_contacts_temperature_rank": ["temperature", "engagement_rank"],
               "ix_contacts_grade_rank": ["fit_grade", "engagement_rank"],
               "ix_contacts_rank": ["engagement_rank"]}
NEW_INDEXES = {"ix_contacts_stage": ["stage"], "ix_contacts_temperature": ["temperature"],
               "ix_contacts_fit_grade": ["fit_grade"]}


def _refuse_cascading_rebuild() -> None:
    """Batch mode rebuilds contacts on SQLite (copy, DROP, RENAME). With foreign keys enforced
    the DROP would first delete every contact, cascading to identities and scores; env.py
    turns enforcement off for migrations, and this makes sure it did."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite foreign keys must be off while contacts is rebuilt")


def upgrade() -> None:
    op.create_table(
        "contact_scores",
        sa.Column("contact_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("engagement_score", sa.Float(), nullable=False),
        sa.Column("engagement_t0", sa.Float(), nullable=True),
        sa.Column("engagement_rank", sa.Float(), nullable=False),
        sa.Column("engagement_breakdown", sa.JSON(), nullable=False),
        sa.Column("engagement_caps", sa.JSON(), nullable=False),
        sa.Column("recycle_baseline", sa.Float(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("rescored", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"],
                                name=op.f("fk_contact_scores_contact_id_contacts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_scores")),
    )
    columns = ", ".join(SCORE_COLUMNS)
    op.execute(f"INSERT INTO contact_scores (contact_id, {columns}) "
               f"SELECT id, {columns} FROM contacts ORDER BY id")
    with op.batch_alter_table("contact_scores", schema=None) as batch_op:
        batch_op.create_index("ix_contact_scores_rank", ["engagement_rank"], unique=False)

    _refuse_cascading_rebuild()
    with op.batch_alter_table("contacts", schema=None,
                              table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        for name in OLD_INDEXES:
            batch_op.drop_index(name)
        for column in SCORE_COLUMNS:
            batch_op.drop_column(column)
        for name, cols in NEW_INDEXES.items():
            batch_op.create_index(name, cols, unique=False)
        batch_op.create_index("ix_contacts_recycled", ["id", "recycled_at"], unique=False,
                              sqlite_where=sa.text("recycled_at IS NOT NULL"),
                              postgresql_where=sa.text("recycled_at IS NOT NULL"))


def downgrade() -> None:
    _refuse_cascading_rebuild()
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_index("ix_contacts_recycled",
                            sqlite_where=sa.text("recycled_at IS NOT NULL"),
                            postgresql_where=sa.text("recycled_at IS NOT NULL"))
        for name in NEW_INDEXES:
            batch_op.drop_index(name)
        batch_op.add_column(sa.Column("recycle_baseline", sa.Float(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("engagement_score", sa.Float(), nullable=False,
                                      server_default="0"))
        batch_op.add_column(sa.Column("engagement_t0", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("engagement_rank", sa.Float(), nullable=False,
                                      server_default="-1000000000.0"))
        for column in ("engagement_breakdown", "engagement_caps", "signals"):
            batch_op.add_column(sa.Column(column, sa.JSON(), nullable=False,
                                          server_default="{}"))
    assignments = ", ".join(
        f"{c} = (SELECT s.{c} FROM contact_scores s WHERE s.contact_id = contacts.id)"
        for c in SCORE_COLUMNS)
    op.execute(f"UPDATE contacts SET {assignments} "
               "WHERE EXISTS (SELECT 1 FROM contact_scores s WHERE s.contact_id = contacts.id)")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        for column in ("recycle_baseline", "engagement_score", "engagement_rank",
                       "engagement_breakdown", "engagement_caps", "signals"):
            batch_op.alter_column(column, server_default=None)
        for name, cols in OLD_INDEXES.items():
            batch_op.create_index(name, cols, unique=False)
    op.drop_table("contact_scores")
