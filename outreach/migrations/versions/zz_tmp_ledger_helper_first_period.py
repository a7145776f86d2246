"""TEMPORARY (ledger helper, removed after its test run): campaigns.first_period

Revision ID: zztmpledger01
Revises: 59cd65c1c5cb
"""

import sqlalchemy as sa
from alembic import op

revision = "zztmpledger01"
down_revision = "59cd65c1c5cb"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("first_period", sa.String(length=7), nullable=True))


def downgrade() -> None:
    op.drop_column("campaigns", "first_period")
