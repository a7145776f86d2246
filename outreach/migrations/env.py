"""Alembic environment: runs migrations on the engine Outreach hands over (or the settings' URL)."""

from __future__ import annotations

from alembic import context

import outreach.models  # noqa: F401  (registers every table on Base.metadata)
from outreach.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
