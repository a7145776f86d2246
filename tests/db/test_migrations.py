"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from outreach import db


def test_schema_is_at_head(engine: Engine) -> None:
    assert db.applied_heads(engine) == db.current_heads()
    assert {"units", "workers", "suppressions", "audiences", "campaigns", "runs", "pieces"} <= set(
        inspect(engine).get_table_names()
    )


def test_models_match_migrations(engine: Engine) -> None:
    # Raises if autogenerate would find a difference between the models and the migrated database.
    command.check(db.alembic_config(engine))


def test_ensure_schema_is_a_no_op_when_current(engine: Engine) -> None:
    assert db.ensure_schema(engine) is engine
