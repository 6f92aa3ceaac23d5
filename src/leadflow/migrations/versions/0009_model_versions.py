"""model versions and contact predictions: the predictive conversion score

Each training run of the conversion model (``leadflow model train``) is a version: its target
and horizon, its inputs, its metrics on the latest examples, and the fitted model; at most one
version is active. The active version's probability for each contact, with that contact's own
top reasons, is kept in ``contact_predictions``.

Revision ID: 0009_model_versions
Revises: 0008_saved_segments
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_model_versions"
down_revision = "0008_saved_segments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("horizon_days", sa.Float(), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("positives", sa.Integer(), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("trained_by", sa.String(200), nullable=False),
        sa.Column("scored_through", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "contact_predictions",
        sa.Column("contact_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("scored_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], ondelete="CASCADE",
                                name=op.f("fk_contact_predictions_contact_id_contacts")),
        sa.ForeignKeyConstraint(["version_id"], ["model_versions.id"], ondelete="CASCADE",
                                name=op.f("fk_contact_predictions_version_id_model_versions")),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_predictions")),
    )
    op.create_index("ix_contact_predictions_version", "contact_predictions", ["version_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_predictions_version", table_name="contact_predictions")
    op.drop_table("contact_predictions")
    op.drop_table("model_versions")
