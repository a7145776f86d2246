"""The seams migration moves stored values: campaigns' print-shop text becomes print shops (organisations),
suppressions say 'letter' where they said 'mail'; and the downgrade gives the old values back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from outreach import db
from tests.conftest import BACKEND, PG_ADMIN_URL

BEFORE = "3b748393a7f9"  # the revision before the seams migration
SEAMS = "c3f1a2b4d5e6"
NOW = "2026-11-01 00:00:00"


@pytest.fixture
def scratch_engine(tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (a file, or a scratch PostgreSQL database), migrated by the test."""
    if BACKEND == "sqlite":
        engine = db.make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield engine
        engine.dispose()
        return
    with db.scratch_database(PG_ADMIN_URL, prefix="outreach_seams") as url:
        engine = db.make_engine(url)
        yield engine
        engine.dispose()


def test_print_shop_text_and_the_mail_word_are_migrated_and_back(scratch_engine: Engine) -> None:
    config = db.alembic_config(scratch_engine)
    command.upgrade(config, BEFORE)
    with scratch_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audiences (id, name, expression, created_at, updated_at) "
                "VALUES (1, 'women', 'gender = ''F''', :now, :now)"
            ),
            {"now": NOW},
        )
        for cid, name, shop in ((1, "a", " 三明邮政印制中心 "), (2, "b", "三明邮政印制中心"), (3, "c", None)):
            conn.execute(
                text(
                    "INSERT INTO campaigns (id, name, channel, audience_id, kit, rate_card_code, schedule, "
                    "print_shop, batch_size, state, created_at, updated_at) VALUES (:id, :name, 'letter', 1, "
                    "'qiaojiaren', 'rc', 'manual', :shop, 1000, 'draft', :now, :now)"
                ),
                {"id": cid, "name": name, "shop": shop, "now": NOW},
            )
        conn.execute(
            text(
                "INSERT INTO suppressions (id, channel, reason, mobile, created_at) VALUES "
                "(1, 'mail', 'returned_mail', '13900000001', :now), "
                "(2, 'all', 'opt_out', '13900000002', :now)"
            ),
            {"now": NOW},
        )
    command.upgrade(config, SEAMS)
    with scratch_engine.connect() as conn:
        shops = conn.execute(text("SELECT id, kind, name FROM organisations")).all()
        assert [(kind, name) for _id, kind, name in shops] == [("printshop", "三明邮政印制中心")]
        linked = conn.execute(text("SELECT id, print_shop_id FROM campaigns ORDER BY id")).all()
        assert [tuple(r) for r in linked] == [(1, shops[0][0]), (2, shops[0][0]), (3, None)]
        channels = conn.execute(text("SELECT channel FROM suppressions ORDER BY id")).scalars().all()
        assert channels == ["letter", "all"]
    command.downgrade(config, BEFORE)
    with scratch_engine.connect() as conn:
        names = conn.execute(text("SELECT print_shop FROM campaigns ORDER BY id")).scalars().all()
        assert names == ["三明邮政印制中心", "三明邮政印制中心", None]
        assert conn.execute(text("SELECT channel FROM suppressions ORDER BY id")).scalars().all() == [
            "mail",
            "all",
        ]
