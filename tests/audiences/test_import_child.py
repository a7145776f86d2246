"""Big files are read and parsed in a child process; the import behaves exactly as in one process."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audiences import importer
from audiences.importer import import_registry
from audiences.models import Unit, Worker
from audiences.reader import SAMPLE_BYTES
from audiences.sample import write_sample
from outreach.db import session_scope
from outreach.errors import ImportFileError


@pytest.fixture
def in_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file counts as big: parsing goes to a child process."""
    monkeypatch.setattr(importer, "PARSE_IN_CHILD_BYTES", 0)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 100)


def counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Worker)) or 0,
        session.scalar(select(func.count()).select_from(Unit)) or 0,
    )


def test_child_parsing_imports_what_one_process_does(
    session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "registry.csv"
    write_sample(path, workers=700, seed=11, malformed=6)
    monkeypatch.setattr(importer, "PARSE_IN_CHILD_BYTES", 0)
    monkeypatch.setattr(importer, "CHUNK_ROWS", 100)
    summary = import_registry(session=session, path=path)
    assert summary.rows == 706 and summary.rejected == 6 and summary.inserted == 700
    assert {r.line for r in summary.rejections} and all(r.reason for r in summary.rejections)
    again = import_registry(session=session, path=path)
    assert (again.inserted, again.unchanged, again.rejected) == (0, 700, 6)
    monkeypatch.setattr(importer, "PARSE_IN_CHILD_BYTES", 1 << 40)
    inline = import_registry(session=session, path=path)
    assert (inline.inserted, inline.unchanged, inline.rejected) == (0, 700, 6)


def test_interrupted_child_import_leaves_nothing(
    committed_engine: Engine, tmp_path: Path, in_child: None
) -> None:
    path = tmp_path / "registry.csv"
    write_sample(path, workers=900, seed=12)
    seen: list[int] = []

    def interrupt(rows: int) -> None:
        seen.append(rows)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), session_scope(committed_engine) as session:
        import_registry(session=session, path=path, progress=interrupt)
    assert seen == [100, 200, 300]
    with session_scope(committed_engine) as session:
        assert counts(session) == (0, 0)


def test_a_bad_byte_found_by_the_child_names_its_line(
    session: Session, tmp_path: Path, in_child: None
) -> None:
    path = tmp_path / "registry.csv"
    # Past the part the encoding is detected from, so that only the reading child meets the bad bytes.
    write_sample(path, workers=3000, seed=13, encoding="gbk")
    lines = path.read_bytes().split(b"\n")
    assert len(b"\n".join(lines[:2900])) > SAMPLE_BYTES
    lines[2900] = lines[2900] + b"\xff\xfe"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ImportFileError, match="第 2901 行"):
        import_registry(session=session, path=path)
    assert counts(session) == (0, 0)
