"""campaign periods: the letter's text per quarter and its review, who changed what, artwork versions

Revision ID: b9d3e5f7a1c2
Revises: a8c4e2f6b1d3
Create Date: 2026-11-29 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from outreach.db import UTCDateTime

revision: str = "b9d3e5f7a1c2"
down_revision: str | Sequence[str] | None = "a8c4e2f6b1d3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_periods",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=True),
        sa.Column("changed_by", sa.String(length=100), nullable=True),
        sa.Column("changed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(length=100), nullable=True),
        sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by_id", sa.Integer(), nullable=True),
        sa.Column("reviewed_by", sa.String(length=100), nullable=True),
        sa.Column("reviewed_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("approved_snapshot", sa.JSON(), nullable=True),
        sa.CheckConstraint(
            "state IN ('draft', 'submitted', 'returned', 'approved')", name=op.f("ck_campaign_periods_state")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_periods_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_periods")),
        sa.UniqueConstraint("campaign_id", "period", name=op.f("uq_campaign_periods_campaign_id_period")),
    )
    op.create_table(
        "campaign_content_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=100), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("what", sa.String(length=80), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_content_changes_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_content_changes")),
    )
    op.create_index(
        "ix_campaign_content_changes_period", "campaign_content_changes", ["campaign_id", "period"]
    )
    op.create_table(
        "campaign_artwork",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_campaign_artwork")),
    )


def downgrade() -> None:
    op.drop_table("campaign_artwork")
    op.drop_index("ix_campaign_content_changes_period", table_name="campaign_content_changes")
    op.drop_table("campaign_content_changes")
    op.drop_table("campaign_periods")
