"""live SMS: pieces' submitted/delivered times, a run's pause, campaigns' SMS kind, hours and daily cap,
receipts and replies as the gateways pushed them

Revision ID: a8c4e2f6b1d3
Revises: f5b8d1e3a9c4
Create Date: 2026-11-29 21:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from outreach.db import UTCDateTime

revision: str = "a8c4e2f6b1d3"
down_revision: str | Sequence[str] | None = "f5b8d1e3a9c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pieces") as batch:
        batch.add_column(sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("delivered_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("paused_until", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("sms_kind", sa.String(10), nullable=False, server_default="marketing"))
        batch.add_column(sa.Column("sms_hours", sa.String(20), nullable=True))
        batch.add_column(sa.Column("sms_daily_cap", sa.Integer(), nullable=True))
    op.create_table(
        "sms_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("gateway", sa.String(10), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("piece_id", sa.Integer(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.Column("error_code", sa.String(60), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reported_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("applied_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["piece_id"], ["pieces.id"], name=op.f("fk_sms_receipts_piece_id_pieces"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_receipts")),
        sa.UniqueConstraint("key", name=op.f("uq_sms_receipts_key")),
    )
    op.create_index(op.f("ix_sms_receipts_message_id"), "sms_receipts", ["message_id"])
    op.create_index(op.f("ix_sms_receipts_piece_id"), "sms_receipts", ["piece_id"])
    op.create_table(
        "sms_replies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("gateway", sa.String(10), nullable=False),
        sa.Column("mobile", sa.String(20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("sent_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("suppression_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["suppression_id"],
            ["suppressions.id"],
            name=op.f("fk_sms_replies_suppression_id_suppressions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_replies")),
        sa.UniqueConstraint("key", name=op.f("uq_sms_replies_key")),
    )
    op.create_index(op.f("ix_sms_replies_mobile"), "sms_replies", ["mobile"])


def downgrade() -> None:
    op.drop_table("sms_replies")
    op.drop_table("sms_receipts")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("sms_daily_cap")
        batch.drop_column("sms_hours")
        batch.drop_column("sms_kind")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("paused_until")
    with op.batch_alter_table("pieces") as batch:
        batch.drop_column("delivered_at")
        batch.drop_column("submitted_at")
