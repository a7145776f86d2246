"""offers: ad bookings per campaign period, redemption codes, redemptions, failed look-ups; 'income' entries

Revision ID: f5b8d1e3a9c4
Revises: e7a1c9d2b4f8
Create Date: 2026-11-29 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import outreach.db

revision: str = "f5b8d1e3a9c4"
down_revision: str | Sequence[str] | None = "e7a1c9d2b4f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "kind IN ('reserve', 'charge', 'fee', 'release', 'refund', 'adjust', 'return')"
NEW_KINDS = "kind IN ('reserve', 'charge', 'fee', 'release', 'refund', 'adjust', 'return', 'income')"
BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _kinds(condition: str) -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint(op.f("ck_ledger_entries_kind"), type_="check")
        batch.create_check_constraint("kind", condition)


def upgrade() -> None:
    op.create_table(
        "ad_bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("slot", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("offer_text", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("artwork", sa.LargeBinary(), nullable=False),
        sa.Column("artwork_name", sa.String(length=200), nullable=False),
        sa.Column("artwork_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", outreach.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("fee_fen >= 0", name=op.f("ck_ad_bookings_fee")),
        sa.CheckConstraint("valid_from <= valid_until", name=op.f("ck_ad_bookings_validity")),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_ad_bookings_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["organisations.id"], name=op.f("fk_ad_bookings_merchant_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ad_bookings")),
        sa.UniqueConstraint(
            "campaign_id", "period", "slot", name=op.f("uq_ad_bookings_campaign_id_period_slot")
        ),
    )
    op.create_index(op.f("ix_ad_bookings_merchant_id"), "ad_bookings", ["merchant_id"])
    op.create_table(
        "redemption_codes",
        sa.Column("id", BIGINT, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("piece_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["piece_id"], ["pieces.id"], name=op.f("fk_redemption_codes_piece_id_pieces"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_redemption_codes_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemption_codes")),
        sa.UniqueConstraint("piece_id", name=op.f("uq_redemption_codes_piece_id")),
        sa.UniqueConstraint("code", "run_id", name=op.f("uq_redemption_codes_code_run_id")),
    )
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code_id", BIGINT, nullable=False),
        sa.Column("booking_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("at", outreach.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"], ["ad_bookings.id"], name=op.f("fk_redemptions_booking_id_ad_bookings")
        ),
        sa.ForeignKeyConstraint(
            ["code_id"],
            ["redemption_codes.id"],
            name=op.f("fk_redemptions_code_id_redemption_codes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["organisations.id"], name=op.f("fk_redemptions_merchant_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("code_id", "merchant_id", name=op.f("uq_redemptions_code_id_merchant_id")),
    )
    op.create_index(op.f("ix_redemptions_booking_id"), "redemptions", ["booking_id"])
    op.create_table(
        "code_lookup_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("at", outreach.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_lookup_failures")),
    )
    op.create_index("ix_code_lookup_failures_account_at", "code_lookup_failures", ["account_id", "at"])
    _kinds(NEW_KINDS)


def downgrade() -> None:
    op.execute("DELETE FROM ledger_entries WHERE kind = 'income'")
    _kinds(OLD_KINDS)
    op.drop_table("code_lookup_failures")
    op.drop_table("redemptions")
    op.drop_table("redemption_codes")
    op.drop_table("ad_bookings")
