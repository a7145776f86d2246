"""seams: organisations (union, print shops, merchants)

Revision ID: c3f1a2b4d5e6
Revises: 3b748393a7f9
Create Date: 2026-11-29 20:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import outreach.db

revision: str = "c3f1a2b4d5e6"
down_revision: str | Sequence[str] | None = "3b748393a7f9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("contact", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=30), nullable=True),
        sa.Column("licence_no", sa.String(length=18), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", outreach.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('union', 'printshop', 'merchant')", name=op.f("ck_organisations_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )


def downgrade() -> None:
    op.drop_table("organisations")
