"""Importing a registry file: validate and normalise each row, then upsert units and workers in bulk.

The one place that applies the registry's row rules: the import and the proof (`proof_recipients`) read
files through audiences.reader and check rows with the same parser, which names every problem of a row
(line, column, reason), in the language of the catalogue (outreach.i18n). A workbook's sheets that carry
the registry's headers are imported one after the other; the others are named in the summary.

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
import os
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
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import ColumnElement, String, Table, any_, bindparam, insert, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from audiences import normalise
from audiences.columns import (
    ALL_COLUMNS,
    HEADER_OF,
    YES_NO_COLUMNS,
    HeaderMap,
    known_columns,
    resolve_headers,
)
from audiences.models import RegistryImport, Unit, Worker
from audiences.normalise import Malformed
from audiences.reader import NUL, RegistryFile, RegistrySheet, check_regular_file, open_registry_file
from audiences.template import ABOUT_HEADER
from outreach.bulk import collector_paused
from outreach.db import Base, utcnow
from outreach.errors import ImportFileError, InputError
from outreach.i18n import _, current_language
from outreach.periods import local_date
from outreach.spreadsheet import safe_cell

if TYPE_CHECKING:
    from outreach.render import Recipient

CHUNK_ROWS = 5000
# Files at least this big are read and parsed in a child process (about 25,000 worker rows).
PARSE_IN_CHILD_BYTES = 5_000_000
# Distinct unit cell sets remembered while parsing; a registry rarely has more units than this.
UNIT_CACHE_SIZE = 100_000
# The summary keeps this many rejections in memory; the rejects file gets all of them.
MAX_REJECTIONS_KEPT = 1000
# The summary names this many filled columns without a header, and counts the rest.
MAX_HEADERLESS_LISTED = 10
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
# Takes a rejected row: its sheet, the header its cells are under, its problems, its cells.
_RejectSink = Callable[[str | None, list[str], list["Rejection"], list[str]], None]
_UNITS: Table = Unit.__table__  # type: ignore[assignment]
_WORKERS: Table = Worker.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Rejection:
    """One problem of a row that was not imported: its line, the column (as headed in the file) and why.

    A row with several problems gives one Rejection for each; `sheet` names a workbook's sheet.
    """

    line: int
    column: str
    reason: str
    sheet: str | None = None

    def describe(self) -> str:
        """The problem as a person reads it: where (sheet, line, column), then why."""
        if self.sheet is not None:
            return _(
                "sheet {sheet}, line {line}, {column}: {reason}",
                sheet=self.sheet,
                line=self.line,
                column=self.column,
                reason=self.reason,
            )
        return _("line {line}, {column}: {reason}", line=self.line, column=self.column, reason=self.reason)


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
    sheets: list[str] = field(default_factory=list)
    skipped_sheets: list[str] = field(default_factory=list)
    applied: bool = True
    import_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-ready data."""
        return asdict(self)


# A problem of a row: the position of its column in the file (for ordering), the column's label, the reason.
_Problem = tuple[int, str, str]
# The position given to a problem whose column the file lacks: after every column it has.
_NO_POSITION = 1 << 30


class _RowError(Exception):
    """Every problem found in one row, in the order of the file's columns."""

    def __init__(self, problems: list[_Problem]) -> None:
        super().__init__("; ".join(reason for _position, _column, reason in problems))
        self.problems = sorted(problems, key=operator.itemgetter(0))

    @classmethod
    def one(cls, column: str, reason: str) -> _RowError:
        """A row with a single problem."""
        return cls([(0, column, reason)])


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
    """Turns the cells of one row into unit and worker values, or a _RowError naming every problem."""

    def __init__(self, headers: HeaderMap, header_row: list[str], *, today: date | None = None) -> None:
        self.positions = headers.positions
        self.has_workers = headers.has_workers
        self.label = {
            c.name: header_row[i].strip()
            for c, i in ((c, headers.positions.get(c.name)) for c in ALL_COLUMNS)
            if i is not None
        }
        self.header_row = header_row
        # "Today" is the union's date (its time zone), not the machine's: birth dates after it are refused.
        self.today = today or local_date()
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
        self.unit_positions = [self.positions.get(c, _NO_POSITION) for c in _UNIT_SOURCE.values()]
        self.worker_defaults: dict[str, Any] = dict.fromkeys(converters) | {"birth": (None, None)}
        self.unit_cache: dict[tuple[str, ...], tuple[dict[str, Any], str] | list[_Problem]] = {}

    def _cell(self, cells: list[str], column: str) -> str:
        index = self.positions.get(column)
        if index is None or index >= len(cells):
            return ""
        return cells[index]

    def _problem(self, column: str, reason: str) -> _Problem:
        """A problem of `column`, labelled as the file heads it (the template's header when it lacks it)."""
        position = self.positions.get(column, _NO_POSITION)
        return position, self.label.get(column) or HEADER_OF[column], reason

    def parse(self, line: int, cells: list[str]) -> _Parsed:
        """Validates and normalises one row; a _RowError lists every problem the row has."""
        problems: list[_Problem] = []
        if NUL in "".join(cells):
            # A NUL character cannot be stored (PostgreSQL refuses it in text) and is never meant.
            problems = self._nul_cells(cells)
        worker = self._worker(cells, problems) if self.has_workers else None
        # Sheets repeat a unit's columns on every worker's row; each distinct set is checked only once.
        unit_cells = tuple(cells[i] if i < len(cells) else "" for i in self.unit_positions)
        parsed_unit = self.unit_cache.get(unit_cells)
        if parsed_unit is None:
            parsed_unit = self._unit(cells)
            if len(self.unit_cache) >= UNIT_CACHE_SIZE:
                self.unit_cache.clear()
            self.unit_cache[unit_cells] = parsed_unit
        if isinstance(parsed_unit, list):
            problems.extend(parsed_unit)
        if problems:
            raise _RowError(_unique_columns(problems))
        assert worker is not None or not self.has_workers
        assert not isinstance(parsed_unit, list)
        unit, key = parsed_unit
        return _Parsed(line=line, cells=cells, unit_key=key, unit=unit, worker=worker)

    def _nul_cells(self, cells: list[str]) -> list[_Problem]:
        reason = _("holds a NUL character (an invisible control code); delete it and save again")
        return [
            (index, self.header_row[index].strip() if index < len(self.header_row) else "", reason)
            for index, cell in enumerate(cells)
            if NUL in cell
        ]

    def _worker(self, cells: list[str], problems: list[_Problem]) -> dict[str, Any] | None:
        values = dict(self.worker_defaults)
        try:
            for column, index, func in self.worker_specs:
                values[column] = func(cells[index]) if index < len(cells) else func("")
        except Malformed:
            # The rare bad row: go through every column again to name each problem, not only the first.
            for column, index, func in self.worker_specs:
                try:
                    values[column] = func(cells[index]) if index < len(cells) else func("")
                except Malformed as exc:
                    problems.append((index, self.label[column], str(exc)))
                    values[column] = self.worker_defaults[column]
        if values["name"] is None and not any(p[1] == self.label["name"] for p in problems):
            problems.append(self._problem("name", _("name missing")))
        if values["gender"] is None and not any(p[1] == self.label.get("gender") for p in problems):
            problems.append(self._problem("gender", _("gender missing")))
        if problems:
            return None
        values["birth_year"], values["birth_date"] = values.pop("birth")
        for flag in YES_NO_COLUMNS:
            values[flag] = bool(values[flag])
        return values

    def _unit(self, cells: list[str]) -> tuple[dict[str, Any], str] | list[_Problem]:
        """The unit a row gives and its key, or the list of its problems."""
        converters: tuple[tuple[str, str, Callable[[str], Any]], ...] = (
            ("name", "unit_name", lambda v: normalise.name(v, max_length=_MAX["unit_name"])),
            ("credit_code", "unit_code", normalise.credit_code),
            ("kind", "unit_kind", normalise.unit_kind),
            ("industry", "industry", lambda v: normalise.text(v, max_length=_MAX["industry"])),
            ("township", "township", lambda v: normalise.text(v, max_length=_MAX["township"])),
            ("address", "unit_address", lambda v: normalise.text(v, max_length=_MAX["unit_address"])),
            ("postcode", "unit_postcode", normalise.postcode),
        )
        unit: dict[str, Any] = {}
        problems: list[_Problem] = []
        for stored, column, func in converters:
            try:
                unit[stored] = func(self._cell(cells, column))
            except Malformed as exc:
                problems.append(self._problem(column, str(exc)))
                unit[stored] = None
        if unit["name"] is None and not any(p[1] == self.label["unit_name"] for p in problems):
            problems.append(self._problem("unit_name", _("unit name missing")))
        if problems:
            return problems
        return unit, unit_key(credit_code=unit["credit_code"], name=unit["name"], township=unit["township"])

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


def _unique_columns(problems: list[_Problem]) -> list[_Problem]:
    """The problems with one per column: a NUL cell's other complaints are left out."""
    seen: set[int] = set()
    out: list[_Problem] = []
    for problem in problems:
        if problem[0] in seen and problem[0] != _NO_POSITION:
            continue
        seen.add(problem[0])
        out.append(problem)
    return out


@contextmanager
def _rejects_writer(path: Path | None, *, sheets: bool) -> Iterator[_RejectSink]:
    """Writes rejected rows as a spreadsheet-safe CSV: one line per row, every problem of it named.

    Its columns are the line, the columns and the reasons (with the sheet first for a workbook), then the
    row's own cells under the file's header, so that a corrected rejects file can be imported again. A sheet
    with another header than the last one written gets its header written again.
    """
    if path is None:
        yield lambda _sheet, _header, _rejections, _cells: None
        return
    separator = _("; ")
    lead = [_("sheet")] if sheets else []
    written: list[list[str] | None] = [None]
    # utf-8-sig: Excel opens a BOM-marked CSV as UTF-8 instead of the local code page.
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)

        def write(
            sheet: str | None, header: list[str], rejections: list[Rejection], cells: list[str]
        ) -> None:
            if written[0] is not header:
                writer.writerow([*lead, _("line"), _("column"), _("reason"), *(safe_cell(h) for h in header)])
                written[0] = header
            columns = separator.join(dict.fromkeys(r.column for r in rejections))
            reasons = separator.join(r.reason for r in rejections)
            writer.writerow(
                [*([safe_cell(sheet)] if sheets else []), rejections[0].line, safe_cell(columns)]
                + [safe_cell(reasons)]
                + [safe_cell(c) for c in cells]
            )

        yield write


class _Importer:
    """The state of one import: the unit cache, the workers met so far, the counts."""

    def __init__(self, session: Session, summary: ImportSummary, reject: _RejectSink):
        self.session = session
        self.summary = summary
        self.reject_sink = reject
        # The sheet whose chunks are being imported (its name, None for CSV, and its header row).
        self.sheet: str | None = None
        self.header: list[str] = []
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

    def reject(self, line: int, problems: list[_Problem], cells: list[str]) -> None:
        """Counts a rejected row, keeps its problems for the summary and writes it to the rejects file."""
        rejections = [
            Rejection(line=line, column=column, reason=reason, sheet=self.sheet)
            for _position, column, reason in problems
        ]
        self.summary.rejected += 1
        room = MAX_REJECTIONS_KEPT - len(self.summary.rejections)
        if room > 0:
            self.summary.rejections.extend(rejections[:room])
        self.reject_sink(self.sheet, self.header, rejections, cells)

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
        problems: list[_Problem] = []
        for name, value in given.items():
            earlier = state.given.get(name)
            if earlier is not None and earlier != value:
                column = _UNIT_SOURCE[name]
                reason = _(
                    "'{value}' contradicts '{earlier}' given for this unit on line {line}",
                    value=value,
                    earlier=earlier,
                    line=state.given_at[name],
                )
                problems.append((len(problems), labels.get(column) or HEADER_OF[column], reason))
        if problems:
            raise _RowError(problems)
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
        for line, problems, cells in chunk.errors:
            self.reject(line, problems, cells)
        parsed = chunk.parsed
        self.wait_copy()
        self._load_units({p.unit_key for p in parsed})
        accepted: list[_Parsed] = []
        for p in parsed:
            try:
                self._merge_unit(p, parser.label)
            except _RowError as exc:
                self.reject(p.line, exc.problems, p.cells)
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
            column = parser.label["worker_no"]
            reason = _("same worker number as line {line}", line=earlier)
        else:
            column = parser.label["name"]
            reason = _("same unit, name and mobile as line {line}", line=earlier)
        self.reject(p.line, [(0, column, reason)], p.cells)

    def finish(self) -> None:
        self.summary.units_updated = len(self.units_updated)
        self.summary.units_unchanged = (
            len(self.units_touched) - self.summary.units_inserted - len(self.units_updated)
        )


@dataclass
class _Table:
    """A sheet the import reads: the sheet, the columns its header names, and its row parser."""

    sheet: RegistrySheet
    headers: HeaderMap
    parser: _RowParser


def _tables(registry: RegistryFile, filename: str, today: date) -> tuple[list[_Table], list[str]]:
    """The sheets with the registry's headers, and the names of the sheets skipped for naming no column.

    A sheet that names registry columns but not rightly (no unit name, a column twice) refuses the file, so
    that no registry data is left behind unsaid.
    """
    tables: list[_Table] = []
    skipped: list[str] = []
    several = len(registry.sheets) > 1
    for sheet in registry.sheets:
        if several and sheet.name is not None and known_columns(sheet.header) == 0:
            if [h.strip() for h in sheet.header] != ABOUT_HEADER:
                skipped.append(sheet.name)
            continue
        headers = resolve_headers(sheet.header, where=sheet.where(filename))
        tables.append(
            _Table(sheet=sheet, headers=headers, parser=_RowParser(headers, sheet.header, today=today))
        )
    if not tables:
        raise ImportFileError(
            _(
                "{file}: no sheet has the registry's headers (a unit name column, 单位名称); "
                "sheets: {sheets}",
                file=filename,
                sheets=", ".join(skipped),
            )
        )
    return tables, skipped


def _sha256(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise ImportFileError(
            _("{file}: cannot be read ({reason})", file=path.name, reason=exc.strerror or str(exc))
        ) from None


def import_registry(
    *,
    session: Session,
    path: Path,
    strict: bool = False,
    rejects: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Imports a registry file (each sheet with the registry's headers) into the session's transaction.

    The caller commits. A file that cannot be read raises ImportFileError before anything is written or,
    found further down, with everything this import wrote rolled back.
    """
    started = utcnow()
    check_regular_file(path)
    digest = _sha256(path)
    today = local_date()
    with open_registry_file(path) as registry:
        tables, skipped = _tables(registry, path.name, today)
        summary = ImportSummary(
            filename=path.name,
            format=registry.format,
            encoding=registry.encoding,
            kind="workers" if any(t.headers.has_workers for t in tables) else "units",
            unknown_columns=list(dict.fromkeys(h for t in tables for h in t.headers.unknown)),
            sheets=[t.sheet.name for t in tables if t.sheet.name is not None],
            skipped_sheets=skipped,
        )
        savepoint = session.begin_nested()
        try:
            with _rejects_writer(rejects, sheets=registry.format == "xlsx") as sink:
                importer = _Importer(session, summary, sink)
                try:
                    with _parsed_chunks(path, tables, today) as chunks:
                        _run_chunks(importer, tables, chunks, summary, progress)
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
    """A chunk of one table's rows as the parser left it: parsed rows, refused rows and their problems,
    and the positions of filled cells beyond the header."""

    table: int
    rows: int
    parsed: list[_Parsed]
    errors: list[tuple[int, list[_Problem], list[str]]]
    headerless: set[int]


def _parse_stream(
    table: int, parser: _RowParser, rows: Iterator[tuple[int, list[str]]], width: int, chunk_rows: int
) -> Iterator[ParsedChunk]:
    """Parses one table's rows into chunks of chunk_rows.

    Cells beyond the header are looked at once and cut off, so a row of thousands of cells costs time in
    proportion to its length and no more.
    """
    chunk = ParsedChunk(table, 0, [], [], set())
    for line, cells in rows:
        if len(cells) > width:
            headerless = chunk.headerless
            for index in range(width, len(cells)):
                if index not in headerless and cells[index].strip():
                    headerless.add(index)
            del cells[width:]
        chunk.rows += 1
        try:
            chunk.parsed.append(parser.parse(line, cells))
        except _RowError as exc:
            chunk.errors.append((line, exc.problems, cells))
        if chunk.rows >= chunk_rows:
            yield chunk
            chunk = ParsedChunk(table, 0, [], [], set())
    if chunk.rows:
        yield chunk


def _parse_tables(tables: list[_Table], chunk_rows: int) -> Iterator[ParsedChunk]:
    """Every table's chunks, one table after the other."""
    for index, table in enumerate(tables):
        yield from _parse_stream(index, table.parser, table.sheet.rows, table.headers.width, chunk_rows)


def _parse_in_child(path: Path, chunk_rows: int, today: date, out: BinaryIO) -> None:
    """The child process's work: read and parse the file, writing pickled chunks, then None or the error."""
    try:
        with open_registry_file(path) as registry:
            tables, _skipped = _tables(registry, path.name, today)
            for chunk in _parse_tables(tables, chunk_rows):
                pickle.dump(chunk, out, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(None, out)
    except Exception as exc:  # the parent raises it as its own
        pickle.dump(exc, out)
    out.flush()


@contextmanager
def _parsed_chunks(path: Path, tables: list[_Table], today: date) -> Iterator[Iterator[ParsedChunk]]:
    """The file's parsed chunks: from a child process for big files, so that reading and parsing (Python)
    run on one core while this process and PostgreSQL write on the other; in this process for small ones.

    The child is a plain subprocess (not multiprocessing), so this works from any program, a Celery worker's
    daemonic pool process included; the pipe's small buffer keeps it only a little ahead. It is given the
    language and the date of this import, so that its reasons and its "today" are this process's.
    """
    if path.stat().st_size < PARSE_IN_CHILD_BYTES:
        yield _parse_tables(tables, CHUNK_ROWS)
        return
    child = subprocess.Popen(  # noqa: S603 - our own module, with a path we were given
        [sys.executable, "-m", "audiences.importer", str(path), str(CHUNK_ROWS), today.isoformat()],
        stdout=subprocess.PIPE,
        env={**os.environ, "OUTREACH_LANG": current_language()},
    )
    assert child.stdout is not None
    stream = child.stdout

    def received() -> Iterator[ParsedChunk]:
        while True:
            try:
                item = pickle.load(stream)  # noqa: S301 - written by our own child process
            except EOFError:
                raise ImportFileError(
                    _("{file}: the parsing process stopped unexpectedly", file=path.name)
                ) from None
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
    tables: list[_Table],
    chunks: Iterator[ParsedChunk],
    summary: ImportSummary,
    progress: Callable[[int], None] | None,
) -> None:
    headerless: set[int] = set()
    with collector_paused():
        for chunk in chunks:
            table = tables[chunk.table]
            importer.sheet, importer.header = table.sheet.name, table.sheet.header
            headerless |= chunk.headerless
            importer.chunk(table.parser, chunk)
            summary.rows += chunk.rows
            if progress is not None:
                progress(summary.rows)
    listed = sorted(headerless)
    summary.unknown_columns += [
        _("column {number} (no header)", number=index + 1) for index in listed[:MAX_HEADERLESS_LISTED]
    ]
    if len(listed) > MAX_HEADERLESS_LISTED:
        summary.unknown_columns.append(
            _("{count} more columns without a header", count=len(listed) - MAX_HEADERLESS_LISTED)
        )


@dataclass
class ProofRecipients:
    """A proof's recipients chosen from a registry file, and the rows the importer's rules refused."""

    recipients: list[Recipient]
    rows: int
    rejections: list[Rejection]


def proof_recipients(*, path: Path, pieces: int = 5) -> ProofRecipients:
    """Picks a proof's recipients from a registry file, read and checked as an import reads and checks it.

    The first rows, then the row with the longest name and the one with the longest address (where letters
    overflow first); the file is streamed, so a whole registry can be given. Rows with problems are left
    out and returned as rejections; the gender, the addresses and every other value follow the import's
    rules (audiences.normalise).
    """
    from outreach.render import Recipient

    check_regular_file(path)
    chosen: list[_Parsed] = []
    # (length, row) of the longest name and of the longest address so far.
    longest_name: tuple[int, _Parsed | None] = (-1, None)
    longest_address: tuple[int, _Parsed | None] = (-1, None)
    rejections: list[Rejection] = []
    rows = 0
    with open_registry_file(path) as registry:
        tables, _skipped = _tables(registry, path.name, local_date())
        if not any(t.headers.has_workers for t in tables):
            raise InputError(
                _(
                    "{file}: a proof needs workers' rows (a name column, 姓名); this file lists only units",
                    file=path.name,
                )
            )
        for chunk in _parse_tables(tables, CHUNK_ROWS):
            rows += chunk.rows
            sheet = tables[chunk.table].sheet.name
            for line, problems, _cells in chunk.errors:
                room = MAX_REJECTIONS_KEPT - len(rejections)
                rejections += [Rejection(line, column, reason, sheet) for _p, column, reason in problems][
                    : max(0, room)
                ]
            for parsed in chunk.parsed:
                if parsed.worker is None:
                    continue
                if len(chosen) < max(1, pieces - 2):
                    chosen.append(parsed)
                name_length = len(parsed.worker["name"])
                if name_length > longest_name[0]:
                    longest_name = (name_length, parsed)
                address_length = len(parsed.unit["address"] or "")
                if address_length > longest_address[0]:
                    longest_address = (address_length, parsed)
    for _length, extra in (longest_name, longest_address):
        if extra is not None and all(extra is not c for c in chosen):
            chosen.append(extra)
    if not chosen:
        raise InputError(
            _("{file}: no row can be used for a proof ({count} rejected)", file=path.name, count=rows)
        )
    recipients = []
    for seq, parsed in enumerate(chosen, start=1):
        worker = parsed.worker
        assert worker is not None
        recipients.append(
            Recipient(
                number=f"PROOF-{seq:06d}",
                seq=seq,
                name=worker["name"],
                gender=worker["gender"],
                unit_name=parsed.unit["name"],
                address=parsed.unit["address"],
                postcode=parsed.unit["postcode"],
                township=parsed.unit["township"],
                mobile=worker["mobile"],
            )
        )
    return ProofRecipients(recipients=recipients, rows=rows, rejections=rejections)


if __name__ == "__main__":
    # The parsing child of a big import (see _parsed_chunks). It runs the module imported under its own name,
    # so that what it pickles names audiences.importer's classes, not __main__'s.
    from audiences import importer

    importer._parse_in_child(
        Path(sys.argv[1]), int(sys.argv[2]), date.fromisoformat(sys.argv[3]), sys.stdout.buffer
    )
