"""Importing a registry file: validate and normalise each row, then upsert units and workers in bulk.

The file is streamed in chunks. Per chunk: the chunk's units are looked up (and cached for the rest of the
file), new ones inserted and changed ones updated; then the stored (key, row_hash) of the chunk's workers are
fetched in one query, and new workers are bulk-inserted, changed ones bulk-updated, the rest counted as
unchanged. Everything happens in the caller's transaction, so a failure or interruption leaves the registry
as it was once the caller rolls back; `strict` rolls back a savepoint itself when any row is rejected.
"""

from __future__ import annotations

import csv
import hashlib
import operator
import pickle
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import ColumnElement, String, Table, any_, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from audiences import normalise
from audiences.columns import ALL_COLUMNS, YES_NO_COLUMNS, HeaderMap, resolve_headers
from audiences.models import RegistryImport, Unit, Worker
from audiences.normalise import Malformed
from audiences.reader import open_registry_file
from outreach.bulk import collector_paused
from outreach.db import Base, utcnow
from outreach.errors import ImportFileError
from outreach.spreadsheet import safe_cell

CHUNK_ROWS = 5000
# Files at least this big are read and parsed in a child process (about 25,000 worker rows).
PARSE_IN_CHILD_BYTES = 5_000_000
# Distinct unit cell sets remembered while parsing; a registry rarely has more units than this.
UNIT_CACHE_SIZE = 100_000
# The summary keeps this many rejections in memory; the rejects file gets all of them.
MAX_REJECTIONS_KEPT = 1000
UNIT_FIELDS = ("name", "credit_code", "kind", "industry", "township", "address", "postcode")
WORKER_FIELDS = (
    "worker_no",
    "name",
    "gender",
    "birth_year",
    "birth_date",
    "category",
    "mobile",
    "home_address",
    "home_postcode",
    "hardship",
    "migrant",
    "consent_sms",
    "mail_opt_out",
    "unit_id",
)
# Which file column each stored unit field comes from, to name the column in a rejection.
_UNIT_SOURCE = {
    "name": "unit_name",
    "credit_code": "unit_code",
    "kind": "unit_kind",
    "industry": "industry",
    "township": "township",
    "address": "unit_address",
    "postcode": "unit_postcode",
}
_UNITS: Table = Unit.__table__  # type: ignore[assignment]
_WORKERS: Table = Worker.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Rejection:
    """A row that was not imported: its line in the file, the column (as headed in the file) and why."""

    line: int
    column: str
    reason: str


@dataclass
class ImportSummary:
    """What an import did. Worker counts are zero for a units-only file; `applied` is False after --strict."""

    filename: str
    format: str
    encoding: str | None
    kind: str = "workers"
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    units_inserted: int = 0
    units_updated: int = 0
    units_unchanged: int = 0
    unknown_columns: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    applied: bool = True
    import_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return asdict(self)


class _RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass
class _UnitState:
    """A unit met in this file: its stored id and values, and the values the file gave (with their line)."""

    id: int | None
    stored: dict[str, Any]
    given: dict[str, Any] = field(default_factory=dict)
    given_at: dict[str, int] = field(default_factory=dict)
    dirty: bool = False


@dataclass
class _Parsed:
    line: int
    cells: list[str]
    unit_key: str
    unit: dict[str, Any]
    worker: dict[str, Any] | None


def unit_key(*, credit_code: str | None, name: str, township: str | None) -> str:
    """A unit's identity: its credit code when given, else its name and township."""
    return f"c:{credit_code}" if credit_code else f"n:{name}|{township or ''}"


def worker_key(*, worker_no: str | None, unit_id: int, name: str, mobile: str | None) -> str:
    """A worker's identity: her worker number when given, else her unit, name and mobile."""
    return f"no:{worker_no}" if worker_no else f"u:{unit_id}:{name}:{mobile or ''}"


_HASHED = operator.itemgetter(*WORKER_FIELDS)


def row_hash(values: dict[str, Any]) -> str:
    """A digest of a worker's imported fields; equal digests mean a re-import changes nothing."""
    # repr of the tuple is exact for str/int/bool/date/None and runs in C, which matters at a million rows.
    return hashlib.md5(repr(_HASHED(values)).encode(), usedforsecurity=False).hexdigest()


def _column_length(table: Table, column: str) -> int:
    length = getattr(table.c[column].type, "length", None)
    assert isinstance(length, int)
    return length


_MAX = {
    "worker_no": _column_length(_WORKERS, "worker_no"),
    "name": _column_length(_WORKERS, "name"),
    "category": _column_length(_WORKERS, "category"),
    "home_address": _column_length(_WORKERS, "home_address"),
    "unit_name": _column_length(_UNITS, "name"),
    "industry": _column_length(_UNITS, "industry"),
    "township": _column_length(_UNITS, "township"),
    "unit_address": _column_length(_UNITS, "address"),
}


MEMO_SIZE = 50_000


@lru_cache(maxsize=8)
def _copy_types(table: str, columns: tuple[str, ...]) -> list[str]:
    """PostgreSQL type names of a table's columns, as binary COPY needs them ('varchar', 'int2', ...)."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    sql_table = Base.metadata.tables[table]
    return [re.sub(r"\(.*\)", "", sql_table.c[c].type.compile(dialect=dialect)).lower() for c in columns]


# Rows written before the first ANALYZE during an import; then each time the count doubles.
ANALYZE_FIRST_AFTER = 20_000


def _memo(func: Callable[[str], Any]) -> Callable[[str], Any]:
    """func with its results remembered per cell text (up to MEMO_SIZE); Malformed is raised each time."""
    cache: dict[str, Any] = {}

    def convert(value: str) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = func(value)
            if len(cache) < MEMO_SIZE:
                cache[value] = result
            return result

    return convert


class _RowParser:
    """Turns the cells of one row into unit and worker values, or a _RowError naming the column."""

    def __init__(self, headers: HeaderMap, header_row: list[str]) -> None:
        self.positions = headers.positions
        self.has_workers = headers.has_workers
        self.label = {
            c.name: header_row[i].strip()
            for c, i in ((c, headers.positions.get(c.name)) for c in ALL_COLUMNS)
            if i is not None
        }
        self.today = date.today()
        # Columns whose values repeat down a sheet (是/否, 女/男, birth years, categories, postcodes, common
        # names) are normalised once per distinct value; mobiles, worker numbers and addresses are not.
        converters: dict[str, Callable[[str], Any]] = {
            "name": _memo(self._name),
            "gender": _memo(normalise.gender),
            "birth": _memo(self._birth),
            "worker_no": self._worker_no,
            "category": _memo(self._category),
            "mobile": normalise.mobile,
            "home_address": self._home_address,
            "home_postcode": _memo(normalise.postcode),
        } | {flag: _memo(normalise.flag) for flag in YES_NO_COLUMNS}
        # Only the columns the file has are parsed; the others keep these defaults.
        self.worker_specs = [(c, self.positions[c], f) for c, f in converters.items() if c in self.positions]
        self.unit_positions = [self.positions.get(c, 1 << 30) for c in _UNIT_SOURCE.values()]
        self.worker_defaults: dict[str, Any] = dict.fromkeys(converters) | {"birth": (None, None)}
        self.unit_cache: dict[tuple[str, ...], tuple[dict[str, Any], str] | _RowError] = {}

    def _cell(self, cells: list[str], column: str) -> str:
        index = self.positions.get(column)
        if index is None or index >= len(cells):
            return ""
        return cells[index]

    def _apply(self, column: str, func: Callable[[str], Any], cells: list[str]) -> Any:
        try:
            return func(self._cell(cells, column))
        except Malformed as exc:
            raise _RowError(self.label[column], str(exc)) from None

    def parse(self, line: int, cells: list[str]) -> _Parsed:
        """Validates and normalises one row."""
        worker = self._worker(cells) if self.has_workers else None
        # Sheets repeat a unit's columns on every worker's row; each distinct set is checked only once.
        unit_cells = tuple(cells[i] if i < len(cells) else "" for i in self.unit_positions)
        parsed_unit = self.unit_cache.get(unit_cells)
        if parsed_unit is None:
            try:
                parsed_unit = self._unit(cells)
            except _RowError as exc:
                parsed_unit = exc
            if len(self.unit_cache) >= UNIT_CACHE_SIZE:
                self.unit_cache.clear()
            self.unit_cache[unit_cells] = parsed_unit
        if isinstance(parsed_unit, _RowError):
            raise parsed_unit
        unit, key = parsed_unit
        return _Parsed(line=line, cells=cells, unit_key=key, unit=unit, worker=worker)

    def _worker(self, cells: list[str]) -> dict[str, Any]:
        values = dict(self.worker_defaults)
        column = ""
        try:
            for column, index, func in self.worker_specs:
                values[column] = func(cells[index]) if index < len(cells) else func("")
        except Malformed as exc:
            raise _RowError(self.label[column], str(exc)) from None
        if values["name"] is None:
            raise _RowError(self.label["name"], "name missing")
        if values["gender"] is None:
            raise _RowError(self.label.get("gender", "gender"), "gender missing")
        values["birth_year"], values["birth_date"] = values.pop("birth")
        for flag in YES_NO_COLUMNS:
            values[flag] = bool(values[flag])
        return values

    def _unit(self, cells: list[str]) -> tuple[dict[str, Any], str]:
        unit_name = self._apply("unit_name", lambda v: normalise.name(v, max_length=_MAX["unit_name"]), cells)
        if unit_name is None:
            raise _RowError(self.label["unit_name"], "unit name missing")
        unit = {
            "name": unit_name,
            "credit_code": self._apply("unit_code", normalise.credit_code, cells),
            "kind": self._apply("unit_kind", normalise.unit_kind, cells),
            "industry": self._apply(
                "industry", lambda v: normalise.text(v, max_length=_MAX["industry"]), cells
            ),
            "township": self._apply(
                "township", lambda v: normalise.text(v, max_length=_MAX["township"]), cells
            ),
            "address": self._apply(
                "unit_address", lambda v: normalise.text(v, max_length=_MAX["unit_address"]), cells
            ),
            "postcode": self._apply("unit_postcode", normalise.postcode, cells),
        }
        return unit, unit_key(credit_code=unit["credit_code"], name=unit_name, township=unit["township"])

    def _name(self, value: str) -> str | None:
        return normalise.name(value, max_length=_MAX["name"])

    def _birth(self, value: str) -> tuple[int | None, date | None]:
        return normalise.birth(value, today=self.today)

    def _worker_no(self, value: str) -> str | None:
        return normalise.worker_no(value, max_length=_MAX["worker_no"])

    def _category(self, value: str) -> str | None:
        return normalise.category(value, max_length=_MAX["category"])

    def _home_address(self, value: str) -> str | None:
        return normalise.text(value, max_length=_MAX["home_address"])


@contextmanager
def _rejects_writer(path: Path | None, header: list[str]) -> Iterator[Callable[[Rejection, list[str]], None]]:
    if path is None:
        yield lambda _rejection, _cells: None
        return
    # utf-8-sig: Excel opens a BOM-marked CSV as UTF-8 instead of the local code page.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "column", "reason", *(safe_cell(h) for h in header)])

        def write(rejection: Rejection, cells: list[str]) -> None:
            writer.writerow(
                [rejection.line, safe_cell(rejection.column), safe_cell(rejection.reason)]
                + [safe_cell(c) for c in cells]
            )

        yield write


class _Importer:
    """The state of one import: the unit cache, the workers met so far, the counts."""

    def __init__(
        self, session: Session, summary: ImportSummary, reject: Callable[[Rejection, list[str]], None]
    ):
        self.session = session
        self.summary = summary
        self.reject_sink = reject
        self.units: dict[str, _UnitState] = {}
        self.units_touched: set[str] = set()
        self.units_updated: set[str] = set()
        # Stored id -> line of every worker this import wrote or matched, to catch a worker listed twice.
        self.seen_workers: dict[int, int] = {}
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.copier: ThreadPoolExecutor | None = None
        self.pending_copy: Future[None] | None = None
        self.next_analyze = ANALYZE_FIRST_AFTER
        # Key -> id of the workers this import inserted, kept only when the registry had no workers before it
        # (a first load): then no lookup in the database is needed to tell new from known.
        registry_empty = session.scalar(select(_WORKERS.c.id).limit(1)) is None
        self.fresh_keys: dict[str, int] | None = {} if registry_empty else None

    def reject(self, line: int, column: str, reason: str, cells: list[str]) -> None:
        rejection = Rejection(line=line, column=column, reason=reason)
        self.summary.rejected += 1
        if len(self.summary.rejections) < MAX_REJECTIONS_KEPT:
            self.summary.rejections.append(rejection)
        self.reject_sink(rejection, cells)

    def _load_units(self, keys: set[str]) -> None:
        missing = [k for k in keys if k not in self.units]
        if not missing:
            return
        columns = [_UNITS.c.id, _UNITS.c.key, *(_UNITS.c[f] for f in UNIT_FIELDS)]
        for row in self.session.execute(select(*columns).where(self._key_in(_UNITS, missing))):
            self.units[row.key] = _UnitState(id=row.id, stored={f: getattr(row, f) for f in UNIT_FIELDS})
        for key in missing:
            self.units.setdefault(key, _UnitState(id=None, stored={}))

    def _merge_unit(self, parsed: _Parsed, labels: dict[str, str]) -> None:
        """Takes the unit values a row gives; a value contradicting an earlier row's is a _RowError."""
        state = self.units[parsed.unit_key]
        given = {name: value for name, value in parsed.unit.items() if value is not None}
        for name, value in given.items():
            earlier = state.given.get(name)
            if earlier is not None and earlier != value:
                column = labels.get(_UNIT_SOURCE[name], _UNIT_SOURCE[name])
                raise _RowError(
                    column,
                    f"{value!r} contradicts {earlier!r} given for this unit on line {state.given_at[name]}",
                )
        for name, value in given.items():
            if name not in state.given:
                state.given[name] = value
                state.given_at[name] = parsed.line
                if state.stored.get(name) != value:
                    state.dirty = True

    def _flush_units(self, keys: set[str]) -> None:
        now = utcnow()
        states = [(k, self.units[k]) for k in keys]
        new = [(k, s) for k, s in states if s.id is None and s.given]
        if new:
            rows = [
                {"key": k, **{f: s.given.get(f) for f in UNIT_FIELDS}, "created_at": now, "updated_at": now}
                for k, s in new
            ]
            for row in rows:
                row["kind"] = row["kind"] or "其他"
            if self.postgres:
                columns = ("key", *UNIT_FIELDS, "created_at", "updated_at")
                ids = dict(zip((r["key"] for r in rows), self._copy("units", columns, rows), strict=True))
            else:
                returned = self.session.execute(insert(_UNITS).returning(_UNITS.c.key, _UNITS.c.id), rows)
                ids = {key: unit_id for key, unit_id in returned}
            for key, state in new:
                state.id = ids[key]
                state.stored = {f: state.given.get(f) for f in UNIT_FIELDS}
                state.stored["kind"] = state.stored["kind"] or "其他"
                state.dirty = False
            self.summary.units_inserted += len(new)
        changed = [(k, s) for k, s in states if s.dirty and s.id is not None]
        if changed:
            params = []
            for key, state in changed:
                state.stored.update(state.given)
                state.dirty = False
                self.units_updated.add(key)
                params.append(
                    {"_id": state.id, **{f: state.stored.get(f) for f in UNIT_FIELDS}, "updated_at": now}
                )
            statement = (
                update(_UNITS)
                .where(_UNITS.c.id == bindparam("_id"))
                .values({f: bindparam(f) for f in (*UNIT_FIELDS, "updated_at")})
            )
            self.session.connection().execute(statement, params)

    def chunk(self, parser: _RowParser, chunk: ParsedChunk) -> None:
        """Imports one parsed chunk of rows."""
        for line, column, reason, cells in chunk.errors:
            self.reject(line, column, reason, cells)
        parsed = chunk.parsed
        self.wait_copy()
        self._load_units({p.unit_key for p in parsed})
        accepted: list[_Parsed] = []
        for p in parsed:
            try:
                self._merge_unit(p, parser.label)
            except _RowError as exc:
                self.reject(p.line, exc.column, exc.reason, p.cells)
                continue
            self.units_touched.add(p.unit_key)
            accepted.append(p)
        self._flush_units({p.unit_key for p in accepted})
        if parser.has_workers:
            self._workers(accepted, parser)
        self._refresh_statistics()

    def _refresh_statistics(self) -> None:
        """ANALYZE the tables each time this import has doubled what they held (PostgreSQL).

        Statistics taken when the registry was small would make the planner look keys up by scanning the
        whole table, chunk after chunk (quadratic). ANALYZE inside the import's transaction sees its rows.
        """
        if not self.postgres:
            return
        written = self.summary.inserted + self.summary.units_inserted
        if written < self.next_analyze:
            return
        self.wait_copy()
        # A first load never looks workers up in the database (fresh_keys), so only units need it then.
        for table in ("units",) if self.fresh_keys is not None else ("units", "workers"):
            self.session.execute(text(f"ANALYZE {table}"))
        self.next_analyze = 2 * max(written, self.next_analyze)

    def _workers(self, accepted: list[_Parsed], parser: _RowParser) -> None:
        by_key: dict[str, tuple[_Parsed, dict[str, Any], str]] = {}
        for p in accepted:
            values = p.worker
            assert values is not None
            unit_id = self.units[p.unit_key].id
            assert unit_id is not None
            values["unit_id"] = unit_id
            key = worker_key(
                worker_no=values["worker_no"], unit_id=unit_id, name=values["name"], mobile=values["mobile"]
            )
            if key in by_key:
                self._reject_duplicate(p, values, by_key[key][0].line, parser)
                continue
            by_key[key] = (p, values, row_hash(values))
        if not by_key:
            return
        if self.fresh_keys is not None:
            # Loading an empty registry: only this import's own rows can match, and they are all in memory.
            fresh = self.fresh_keys
            stored = {key: (fresh[key], "") for key in by_key if key in fresh}
        else:
            stored = {
                row.key: (row.id, row.row_hash)
                for row in self.session.execute(
                    select(_WORKERS.c.key, _WORKERS.c.id, _WORKERS.c.row_hash).where(
                        self._key_in(_WORKERS, list(by_key))
                    )
                )
            }
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        lines_by_key: dict[str, int] = {}
        for key, (p, values, digest) in by_key.items():
            found = stored.get(key)
            if found is None:
                inserts.append(
                    {"key": key, **values, "row_hash": digest, "created_at": now, "updated_at": now}
                )
                lines_by_key[key] = p.line
                continue
            worker_id, stored_hash = found
            if worker_id in self.seen_workers:
                self._reject_duplicate(p, values, self.seen_workers[worker_id], parser)
                continue
            self.seen_workers[worker_id] = p.line
            if stored_hash == digest:
                self.summary.unchanged += 1
            else:
                updates.append({"_id": worker_id, **values, "row_hash": digest, "updated_at": now})
        if updates:
            statement = (
                update(_WORKERS)
                .where(_WORKERS.c.id == bindparam("_id"))
                .values({f: bindparam(f) for f in (*WORKER_FIELDS, "row_hash", "updated_at")})
            )
            self.session.connection().execute(statement, updates)
            self.summary.updated += len(updates)
        if inserts:
            if self.postgres:
                columns = ("key", *WORKER_FIELDS, "row_hash", "created_at", "updated_at")
                ids = self._copy("workers", columns, inserts, background=True)
            else:
                ids = self._insert_workers(inserts)
            for worker_id, row in zip(ids, inserts, strict=True):
                self.seen_workers[worker_id] = lines_by_key[row["key"]]
                if self.fresh_keys is not None:
                    self.fresh_keys[row["key"]] = worker_id
            self.summary.inserted += len(inserts)

    def _key_in(self, table: Table, keys: list[str]) -> ColumnElement[bool]:
        """key IN keys; on PostgreSQL one array parameter, which the driver need not parse per key."""
        if self.postgres:
            return table.c.key == any_(bindparam("keys", value=keys, type_=ARRAY(String)))
        return table.c.key.in_(keys)

    def _insert_workers(self, rows: list[dict[str, Any]]) -> list[int]:
        """Inserts workers with multi-row INSERTs; their ids in the order of `rows`."""
        returned = self.session.execute(insert(_WORKERS).returning(_WORKERS.c.key, _WORKERS.c.id), rows)
        ids = {key: worker_id for key, worker_id in returned}
        return [ids[row["key"]] for row in rows]

    def _copy(
        self, table: str, columns: tuple[str, ...], rows: list[dict[str, Any]], *, background: bool = False
    ) -> list[int]:
        """Inserts rows with COPY (PostgreSQL), ids drawn from the sequence first; ids in row order.

        In the background the COPY runs while the next chunk is parsed; every later statement of the import
        first waits for it (wait_copy).
        """
        connection = self.session.connection()
        ids = list(
            connection.execute(
                text(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, :n)"),
                {"n": len(rows)},
            ).scalars()
        )
        driver = connection.connection.driver_connection
        assert driver is not None
        # Binary COPY with the columns' types given: psycopg then formats each value in C (about 3x faster
        # than text COPY, which matters because the formatting holds the GIL the parser needs).
        statement = f"COPY {table} (id, {', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        types = _copy_types(table, ("id", *columns))

        def copy_rows() -> None:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(types)
                for row_id, row in zip(ids, rows, strict=True):
                    copy.write_row((row_id, *(row[c] for c in columns)))

        if not background:
            copy_rows()
            return ids
        if self.copier is None:
            self.copier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="registry-copy")
        self.pending_copy = self.copier.submit(copy_rows)
        return ids

    def wait_copy(self) -> None:
        """Waits for the COPY of the previous chunk; its error, if any, is raised here."""
        pending, self.pending_copy = self.pending_copy, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Waits for any COPY still running (also when the import is failing) and stops its thread."""
        try:
            self.wait_copy()
        finally:
            if self.copier is not None:
                self.copier.shutdown(wait=True)

    def _reject_duplicate(self, p: _Parsed, values: dict[str, Any], earlier: int, parser: _RowParser) -> None:
        if values["worker_no"]:
            column, what = parser.label["worker_no"], "worker number"
        else:
            column, what = parser.label["name"], "unit, name and mobile"
        self.reject(p.line, column, f"same {what} as line {earlier}", p.cells)

    def finish(self) -> None:
        self.summary.units_updated = len(self.units_updated)
        self.summary.units_unchanged = (
            len(self.units_touched) - self.summary.units_inserted - len(self.units_updated)
        )


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def import_registry(
    *,
    session: Session,
    path: Path,
    strict: bool = False,
    rejects: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Imports a registry file into the session's transaction; the caller commits."""
    started = utcnow()
    digest = _sha256(path)
    with open_registry_file(path) as registry:
        where = path.name
        headers = resolve_headers(registry.header, where=where)
        summary = ImportSummary(
            filename=path.name,
            format=registry.format,
            encoding=registry.encoding,
            kind="workers" if headers.has_workers else "units",
            unknown_columns=list(headers.unknown),
        )
        parser = _RowParser(headers, registry.header)
        savepoint = session.begin_nested()
        try:
            with _rejects_writer(rejects, registry.header) as sink:
                importer = _Importer(session, summary, sink)
                try:
                    with _parsed_chunks(path, parser, registry.rows, headers.width) as chunks:
                        _run_chunks(importer, parser, chunks, summary, progress)
                except BaseException:
                    with suppress(Exception):
                        importer.close()
                    raise
                importer.close()
                importer.finish()
        except BaseException:
            savepoint.rollback()
            raise
    if strict and summary.rejected:
        savepoint.rollback()
        summary.applied = False
        summary.inserted = summary.updated = summary.unchanged = 0
        summary.units_inserted = summary.units_updated = summary.units_unchanged = 0
    else:
        savepoint.commit()
    record = RegistryImport(
        filename=path.name[:500],
        sha256=digest,
        encoding=summary.encoding or summary.format,
        inserted=summary.inserted,
        updated=summary.updated,
        unchanged=summary.unchanged,
        rejected=summary.rejected,
        units_inserted=summary.units_inserted,
        units_updated=summary.units_updated,
        started_at=started,
        finished_at=utcnow(),
    )
    session.add(record)
    session.flush()
    summary.import_id = record.id
    return summary


@dataclass
class ParsedChunk:
    """A chunk of rows as the parser left it: parsed rows, rows it refused, headerless columns seen."""

    rows: int
    parsed: list[_Parsed]
    errors: list[tuple[int, str, str, list[str]]]
    headerless: list[str]


def _parse_stream(
    parser: _RowParser, rows: Iterator[tuple[int, list[str]]], width: int, chunk_rows: int
) -> Iterator[ParsedChunk]:
    """Parses rows into chunks of chunk_rows."""
    chunk = ParsedChunk(0, [], [], [])
    for line, cells in rows:
        if len(cells) > width:
            for i in range(width, len(cells)):
                label = f"column {i + 1} (no header)"
                if cells[i].strip() and label not in chunk.headerless:
                    chunk.headerless.append(label)
        chunk.rows += 1
        try:
            chunk.parsed.append(parser.parse(line, cells))
        except _RowError as exc:
            chunk.errors.append((line, exc.column, exc.reason, cells))
        if chunk.rows >= chunk_rows:
            yield chunk
            chunk = ParsedChunk(0, [], [], [])
    if chunk.rows:
        yield chunk


def _parse_in_child(path: Path, chunk_rows: int, out: BinaryIO) -> None:
    """The child process's work: read and parse the file, writing pickled chunks, then None or the error."""
    try:
        with open_registry_file(path) as registry:
            headers = resolve_headers(registry.header, where=path.name)
            parser = _RowParser(headers, registry.header)
            for chunk in _parse_stream(parser, registry.rows, headers.width, chunk_rows):
                pickle.dump(chunk, out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(None, out)
    except Exception as exc:  # the parent raises it as its own
        pickle.dump(exc, out)
    out.flush()


@contextmanager
def _parsed_chunks(
    path: Path, parser: _RowParser, rows: Iterator[tuple[int, list[str]]], width: int
) -> Iterator[Iterator[ParsedChunk]]:
    """The file's parsed chunks: from a child process for big files, so that reading and parsing (Python)
    run on one core while this process and PostgreSQL write on the other; in this process for small ones.

    The child is a plain subprocess (not multiprocessing), so this works from any program, a Celery worker's
    daemonic pool process included; the pipe's small buffer keeps it only a little ahead.
    """
    if path.stat().st_size < PARSE_IN_CHILD_BYTES:
        yield _parse_stream(parser, rows, width, CHUNK_ROWS)
        return
    child = subprocess.Popen(  # noqa: S603 - our own module, with a path we were given
        [sys.executable, "-m", "audiences.importer", str(path), str(CHUNK_ROWS)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    stream = child.stdout

    def received() -> Iterator[ParsedChunk]:
        while True:
            try:
                item = pickle.load(stream)  # noqa: S301 - written by our own child process
            except EOFError:
                raise ImportFileError(f"{path.name}: the parsing process stopped unexpectedly") from None
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    try:
        yield received()
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        stream.close()


def _run_chunks(
    importer: _Importer,
    parser: _RowParser,
    chunks: Iterator[ParsedChunk],
    summary: ImportSummary,
    progress: Callable[[int], None] | None,
) -> None:
    with collector_paused():
        for chunk in chunks:
            for label in chunk.headerless:
                if label not in summary.unknown_columns:
                    summary.unknown_columns.append(label)
            importer.chunk(parser, chunk)
            summary.rows += chunk.rows
            if progress is not None:
                progress(summary.rows)


if __name__ == "__main__":
    # The parsing child of a big import (see _parsed_chunks). It runs the module imported under its own name,
    # so that what it pickles names audiences.importer's classes, not __main__'s.
    from audiences import importer

    importer._parse_in_child(Path(sys.argv[1]), int(sys.argv[2]), sys.stdout.buffer)
