"""Registry tables: work units (单位), workers (职工), suppressions, saved audiences, import records."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
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

UNIT_KINDS = ("企业", "事业单位", "机关", "学校", "其他")
GENDERS = ("F", "M")


class Unit(Base):
    """A work unit (单位): an enterprise, institution, government office or school."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Identity: the credit code when given, else name + township (see audiences.importer.unit_key).
    key: Mapped[str] = mapped_column(String(300), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    kind: Mapped[str] = mapped_column(String(10), default="其他")
    industry: Mapped[str | None] = mapped_column(String(100))
    township: Mapped[str | None] = mapped_column(String(100), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    postcode: Mapped[str | None] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    workers: Mapped[list[Worker]] = relationship(back_populates="unit")

    __table_args__ = (CheckConstraint(f"kind IN {UNIT_KINDS!r}", name="kind"),)


class Worker(Base):
    """A union member (职工) at a work unit."""

    __tablename__ = "workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Identity: 'no:<worker_no>' when given, else 'u:<unit_id>:<name>:<mobile>' (importer.worker_key).
    key: Mapped[str] = mapped_column(String(300), unique=True)
    worker_no: Mapped[str | None] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(50))
    gender: Mapped[str] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    birth_date: Mapped[date | None] = mapped_column(Date)
    category: Mapped[str | None] = mapped_column(String(50))
    mobile: Mapped[str | None] = mapped_column(String(11), index=True)
    home_address: Mapped[str | None] = mapped_column(String(300))
    home_postcode: Mapped[str | None] = mapped_column(String(6))
    hardship: Mapped[bool] = mapped_column(Boolean, default=False)
    migrant: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_sms: Mapped[bool] = mapped_column(Boolean, default=False)
    mail_opt_out: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    # Digest of the imported fields: a re-import compares it to tell 'updated' from 'unchanged'.
    row_hash: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship(back_populates="workers")

    __table_args__ = (
        CheckConstraint("gender IN ('F', 'M')", name="gender"),
        Index("ix_workers_gender_unit", "gender", "unit_id"),
    )


class Suppression(Base):
    """Someone not to contact: an opt-out, returned mail, or a number that replied R/T/退订.

    A row names a worker, a mobile, or both. channel 'all' holds across channels (opt-outs do, per PIPL).
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(String(20))
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("workers.id", ondelete="CASCADE"), index=True)
    mobile: Mapped[str | None] = mapped_column(String(11), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        CheckConstraint("channel IN ('letter', 'sms', 'all')", name="channel"),
        CheckConstraint("reason IN ('opt_out', 'returned_mail', 'sms_reply')", name="reason"),
        CheckConstraint("worker_id IS NOT NULL OR mobile IS NOT NULL", name="target"),
        UniqueConstraint("channel", "reason", "worker_id", "mobile"),
    )


class Audience(Base):
    """A saved audience: a named expression in the audience query language."""

    __tablename__ = "audiences"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    expression: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class RegistryImport(Base):
    """One import of a registry file and what it did."""

    __tablename__ = "registry_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    encoding: Mapped[str | None] = mapped_column(String(20))
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    units_inserted: Mapped[int] = mapped_column(Integer, default=0)
    units_updated: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
