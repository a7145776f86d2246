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


def downgrade() -> None:
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
