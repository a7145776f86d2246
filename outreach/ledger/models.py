"""Ledger tables: versioned rate cards and their fees, budgets (accounts + append-only versions), entries."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from outreach.db import Base, UTCDateTime, utcnow

# 'return' records a piece the post brought back (no money moves; a refund, if the offer gives one, is its own
# 'refund' entry), so statements count returned pieces whether or not they were refunded.
# 'income' is a merchant's ad fee for a slot of the run's letters (piece_id holds the booking's id).
ENTRY_KINDS = ("reserve", "charge", "fee", "release", "refund", "adjust", "return", "income")
# piece_id of entries that concern the whole run (reserve, fee, release): a real piece id is never 0.
RUN_LEVEL = 0


class RateCard(Base):
    """One version of a rate card (e.g. 'qiaojiaren'), in force from `effective_from` until a later one."""

    __tablename__ = "rate_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(50))
    version: Mapped[int] = mapped_column(Integer)
    effective_from: Mapped[date] = mapped_column(Date)
    letter_fen: Mapped[int] = mapped_column(Integer)
    sms_part_fen: Mapped[int] = mapped_column(Integer)
    # The offer refunds pieces returned as undeliverable (a refund entry per returned piece).
    refund_undeliverable: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    fees: Mapped[list[RateCardFee]] = relationship(
        back_populates="rate_card", order_by="RateCardFee.position", lazy="selectin"
    )

    __table_args__ = (
        UniqueConstraint("code", "version"),
        Index("ix_rate_cards_code_from", "code", "effective_from"),
        CheckConstraint("letter_fen >= 0 AND sms_part_fen >= 0", name="prices"),
    )


class RateCardFee(Base):
    """An itemised fee of a rate card version: per piece or fixed per run, and whether the offer waives it."""

    __tablename__ = "rate_card_fees"

    id: Mapped[int] = mapped_column(primary_key=True)
    rate_card_id: Mapped[int] = mapped_column(ForeignKey("rate_cards.id"), index=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    name: Mapped[str] = mapped_column(String(50))
    per_piece_fen: Mapped[int | None] = mapped_column(Integer)
    fixed_fen: Mapped[int | None] = mapped_column(Integer)
    waived: Mapped[bool] = mapped_column(Boolean, default=False)

    rate_card: Mapped[RateCard] = relationship(back_populates="fees")

    __table_args__ = (
        UniqueConstraint("rate_card_id", "name"),
        CheckConstraint("(per_piece_fen IS NULL) <> (fixed_fen IS NULL)", name="one_price"),
        CheckConstraint("COALESCE(per_piece_fen, fixed_fen) >= 0", name="not_negative"),
    )


class Budget(Base):
    """A campaign's budget account for one period ('2027' or '2027-Q1'); its amounts are BudgetVersions.

    The row of the year ('2027') is also the lock every reservation and budget change of that year takes.
    """

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    period: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    versions: Mapped[list[BudgetVersion]] = relationship(
        back_populates="budget", order_by="BudgetVersion.id", lazy="selectin"
    )

    __table_args__ = (UniqueConstraint("campaign_id", "period"),)

    @property
    def amount_fen(self) -> int | None:
        """The amount in force: the latest version (None when only the lock row exists)."""
        return self.versions[-1].amount_fen if self.versions else None


class BudgetVersion(Base):
    """An amount set for a budget by finance; raising or lowering appends a version, history stays."""

    __tablename__ = "budget_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    budget_id: Mapped[int] = mapped_column(ForeignKey("budgets.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    budget: Mapped[Budget] = relationship(back_populates="versions")

    __table_args__ = (CheckConstraint("amount_fen >= 0", name="not_negative"),)


class LedgerEntry(Base):
    """An append-only money movement in fen; (run, piece, kind) is unique so a retry never books twice.

    amount_fen is the net amount (always >= 0 except adjustments, which carry their sign); list_fen and
    waived_fen say what it would have cost at list price and what the offer waived (list - waived = amount).
    """

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    piece_id: Mapped[int] = mapped_column(BigInteger, default=RUN_LEVEL)
    kind: Mapped[str] = mapped_column(String(8))
    period: Mapped[str] = mapped_column(String(7))
    pieces: Mapped[int] = mapped_column(Integer, default=0)
    units: Mapped[int] = mapped_column(Integer, default=0)
    list_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    waived_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("run_id", "piece_id", "kind"),
        Index("ix_ledger_entries_campaign_period", "campaign_id", "period"),
        CheckConstraint(f"kind IN {ENTRY_KINDS!r}", name="kind"),
        CheckConstraint("kind = 'adjust' OR amount_fen >= 0", name="sign"),
        CheckConstraint("kind = 'adjust' OR run_id IS NOT NULL", name="run"),
        CheckConstraint("list_fen - waived_fen = amount_fen OR kind = 'adjust'", name="arithmetic"),
    )
