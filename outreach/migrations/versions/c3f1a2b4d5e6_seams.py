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
    _runs_liveness_upgrade()
    _channels_upgrade()


def downgrade() -> None:
    _channels_downgrade()
    _runs_liveness_downgrade()
    op.drop_table("organisations")


# --- Runs' liveness (runs orchestration: outreach/runs/executor.py, supervisor.py) -------------------------
# A 'stalled' run state, the dispatch claim and progress stamps on runs, and the append-only run_events table.
_RUN_STATES_OLD = "state IN ('waiting', 'rendering', 'assembling', 'done', 'cancelled')"
_RUN_STATES_NEW = "state IN ('waiting', 'rendering', 'assembling', 'done', 'cancelled', 'stalled')"


def _runs_liveness_upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("ck_runs_state"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_state"), sa.text(_RUN_STATES_NEW))
        batch.add_column(sa.Column("dispatched_at", outreach.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("progress_at", outreach.db.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("redispatches", sa.Integer(), server_default="0", nullable=False))
    op.create_table(
        "run_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("at", outreach.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_events")),
    )
    op.create_index(op.f("ix_run_events_run_id"), "run_events", ["run_id"], unique=False)


def _runs_liveness_downgrade() -> None:
    op.drop_index(op.f("ix_run_events_run_id"), table_name="run_events")
    op.drop_table("run_events")
    op.execute("UPDATE runs SET state = 'cancelled' WHERE state = 'stalled'")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("redispatches")
        batch.drop_column("progress_at")
        batch.drop_column("dispatched_at")
        batch.drop_constraint(op.f("ck_runs_state"), type_="check")
        batch.create_check_constraint(op.f("ck_runs_state"), sa.text(_RUN_STATES_OLD))


# --- Channels, print shops, one word per channel (outreach/channels, outreach/accounts/service.py) ---------
# Pieces gain what a live channel reports (submitted, delivered, the gateway's error code and message id);
# a campaign's print shop becomes an organisation (kind printshop), its old text moved over; runs.rate_card_id
# gets its foreign key; suppressions say 'letter' where they said 'mail'.
_PIECE_STATES_OLD = "state IN ('pending', 'rendered', 'failed')"
_PIECE_STATES_NEW = "state IN ('pending', 'rendered', 'submitted', 'delivered', 'failed')"
_SUPPRESSION_CHANNELS_OLD = "channel IN ('mail', 'sms', 'all')"
_SUPPRESSION_CHANNELS_NEW = "channel IN ('letter', 'sms', 'all')"


def _channels_upgrade() -> None:
    with op.batch_alter_table("pieces") as batch:
        batch.drop_constraint(op.f("ck_pieces_state"), type_="check")
        batch.create_check_constraint(op.f("ck_pieces_state"), sa.text(_PIECE_STATES_NEW))
        batch.add_column(sa.Column("error_code", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("message_id", sa.String(length=64), nullable=True))
        batch.create_index(op.f("ix_pieces_message_id"), ["message_id"], unique=False)
    with op.batch_alter_table("runs") as batch:
        batch.create_foreign_key(
            op.f("fk_runs_rate_card_id_rate_cards"), "rate_cards", ["rate_card_id"], ["id"]
        )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("print_shop_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_campaigns_print_shop_id_organisations"), "organisations", ["print_shop_id"], ["id"]
        )
    _print_shops_to_organisations()
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("print_shop")
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_constraint(op.f("ck_suppressions_channel"), type_="check")
        batch.alter_column("channel", existing_type=sa.String(length=5), type_=sa.String(length=6))
    op.execute("UPDATE suppressions SET channel = 'letter' WHERE channel = 'mail'")
    with op.batch_alter_table("suppressions") as batch:
        batch.create_check_constraint(op.f("ck_suppressions_channel"), sa.text(_SUPPRESSION_CHANNELS_NEW))


def _print_shops_to_organisations() -> None:
    """Each distinct print-shop text of a campaign becomes one print shop; the campaign points at it."""
    bind = op.get_bind()
    campaigns = sa.table(
        "campaigns",
        sa.column("id", sa.Integer()),
        sa.column("print_shop", sa.String()),
        sa.column("print_shop_id"),
    )
    organisations = sa.table(
        "organisations",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("name", sa.String()),
        sa.column("active", sa.Boolean()),
        sa.column("created_at", outreach.db.UTCDateTime(timezone=True)),
    )
    rows = bind.execute(sa.select(campaigns.c.id, campaigns.c.print_shop)).all()
    now = outreach.db.utcnow()
    ids: dict[str, int] = {}
    for campaign_id, text in rows:
        name = (text or "").strip()[:100]
        if not name:
            continue
        if name not in ids:
            found = bind.execute(sa.select(organisations.c.id).where(organisations.c.name == name)).scalar()
            if found is None:
                bind.execute(
                    organisations.insert().values(kind="printshop", name=name, active=True, created_at=now)
                )
                found = bind.execute(
                    sa.select(organisations.c.id).where(organisations.c.name == name)
                ).scalar_one()
            ids[name] = int(found)
        bind.execute(campaigns.update().where(campaigns.c.id == campaign_id).values(print_shop_id=ids[name]))


def _channels_downgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_constraint(op.f("ck_suppressions_channel"), type_="check")
    op.execute("UPDATE suppressions SET channel = 'mail' WHERE channel = 'letter'")
    with op.batch_alter_table("suppressions") as batch:
        batch.alter_column("channel", existing_type=sa.String(length=6), type_=sa.String(length=5))
        batch.create_check_constraint(op.f("ck_suppressions_channel"), sa.text(_SUPPRESSION_CHANNELS_OLD))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("print_shop", sa.String(length=100), nullable=True))
    op.execute(
        "UPDATE campaigns SET print_shop = "
        "(SELECT name FROM organisations WHERE organisations.id = campaigns.print_shop_id)"
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint(op.f("fk_campaigns_print_shop_id_organisations"), type_="foreignkey")
        batch.drop_column("print_shop_id")
    with op.batch_alter_table("runs") as batch:
        batch.drop_constraint(op.f("fk_runs_rate_card_id_rate_cards"), type_="foreignkey")
    op.execute("UPDATE pieces SET state = 'rendered' WHERE state IN ('submitted', 'delivered')")
    with op.batch_alter_table("pieces") as batch:
        batch.drop_index(op.f("ix_pieces_message_id"))
        batch.drop_column("message_id")
        batch.drop_column("error_code")
        batch.drop_constraint(op.f("ck_pieces_state"), type_="check")
        batch.create_check_constraint(op.f("ck_pieces_state"), sa.text(_PIECE_STATES_OLD))
