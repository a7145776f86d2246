"""ledger: 'return' entries record returned pieces apart from refunds

Revision ID: e7a1c9d2b4f8
Revises: d4e2b3c5f6a7
Create Date: 2026-11-29 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "e7a1c9d2b4f8"
down_revision: str | Sequence[str] | None = "d4e2b3c5f6a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = "kind IN ('reserve', 'charge', 'fee', 'release', 'refund', 'adjust')"
NEW = "kind IN ('reserve', 'charge', 'fee', 'release', 'refund', 'adjust', 'return')"


def _kinds(condition: str) -> None:
    with op.batch_alter_table("ledger_entries") as batch:
        batch.drop_constraint(op.f("ck_ledger_entries_kind"), type_="check")
        batch.create_check_constraint("kind", condition)


def upgrade() -> None:
    _kinds(NEW)


def downgrade() -> None:
    op.execute("DELETE FROM ledger_entries WHERE kind = 'return'")
    _kinds(OLD)
