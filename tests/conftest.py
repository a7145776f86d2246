"""Shared fixtures: a migrated database per test session, on PostgreSQL or on the embedded SQLite.

OUTREACH_TEST_DB=postgres (default) makes a throw-away database on the server at OUTREACH_TEST_PG_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/test); OUTREACH_TEST_DB=sqlite uses a temporary file.
Each test's `session` runs inside a transaction that is rolled back; tests that must commit (concurrency,
interrupted imports) use `committed_engine`, whose tables are emptied afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from outreach import db
from outreach.settings import get_settings

BACKEND = os.environ.get("OUTREACH_TEST_DB", "postgres")
PG_ADMIN_URL = os.environ.get("OUTREACH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pytest_report_header() -> str:
    return f"outreach database backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if BACKEND == "postgres":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (OUTREACH_TEST_DB=postgres)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database for this test session."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("db") / "outreach.db"
        yield f"sqlite:///{path}"
        return
    with db.scratch_database(PG_ADMIN_URL, prefix="outreach_test") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """The migrated engine; also what the settings (and so the CLI and tasks) point at."""
    data_dir = tmp_path_factory.mktemp("outreach-data")
    os.environ["OUTREACH_DATABASE_URL"] = database_url
    os.environ["OUTREACH_DATA_DIR"] = str(data_dir)
    get_settings.cache_clear()
    db.dispose_engines()
    eng = db.get_engine(database_url)
    db.upgrade(eng)
    yield eng
    db.dispose_engines()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test; its commits only release savepoints."""
    with engine.connect() as conn:
        outer = conn.begin()
        sess = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield sess
        finally:
            sess.close()
            outer.rollback()


@pytest.fixture
def committed_engine(engine: Engine) -> Iterator[Engine]:
    """The engine, for tests that really commit; every table is emptied afterwards."""
    yield engine
    truncate_all(engine)


@pytest.fixture
def site(committed_engine: Engine) -> Iterator[str]:
    """The web service on a free loopback port, in a thread of this process (same database)."""
    import socket
    import threading
    import time

    import uvicorn

    from outreach.web.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the web service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def truncate_all(engine: Engine) -> None:
    """Empties every Outreach table."""
    tables = [t.name for t in reversed(db.Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f'DELETE FROM "{t}"'))


@pytest.fixture
def data_dir(engine: Engine) -> Path:
    """The data folder the settings point at during tests."""
    return get_settings().data_dir
