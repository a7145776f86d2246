"""The synthetic registry: realistic, valid, deterministic, and malformed exactly where asked."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

from stdnum.cn import uscc

from audiences import normalise
from audiences.columns import ALL_COLUMNS
from audiences.sample import MALFORMED_KINDS, TOWNSHIPS, write_sample

AS_OF = date(2026, 1, 1)
COLUMN = {c.name: i for i, c in enumerate(ALL_COLUMNS)}


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))[1:]


def test_sample_is_realistic_and_valid(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    stats = write_sample(path, workers=6000, seed=11, as_of=AS_OF)
    rows = _rows(path)
    assert len(rows) == 6000 and stats.units == 300
    genders = Counter(normalise.gender(r[COLUMN["gender"]]) for r in rows)
    assert 0.45 < genders["F"] / 6000 < 0.55
    ages = [AS_OF.year - (normalise.birth(r[COLUMN["birth"]], today=AS_OF)[0] or 0) for r in rows]
    assert min(ages) >= 17 and max(ages) <= 66
    units = {r[COLUMN["unit_name"]]: r for r in rows}
    kinds = Counter(r[COLUMN["unit_kind"]] for r in units.values())
    assert set(kinds) == {"企业", "事业单位", "机关", "学校", "其他"} and kinds["企业"] > kinds["机关"]
    assert {r[COLUMN["township"]] for r in units.values()} == {t[0] for t in TOWNSHIPS}
    codes = [r[COLUMN["unit_code"]] for r in units.values() if r[COLUMN["unit_code"]]]
    assert len(codes) > 250 and all(uscc.is_valid(c) and c[2:8] == "350426" for c in codes)
    assert all(normalise.mobile(r[COLUMN["mobile"]]) or not r[COLUMN["mobile"]] for r in rows)
    assert {r[COLUMN["category"]] for r in rows} == {"公务员", "白领", "企业职工", "教师", "医护人员"}
    flags = {
        name: sum(r[COLUMN[name]] == "是" for r in rows) / 6000
        for name in ("hardship", "migrant", "consent_sms")
    }
    assert 0.01 < flags["hardship"] < 0.1 and 0.03 < flags["migrant"] < 0.2 and flags["consent_sms"] > 0.7
    assert any("纺织" in name for name in units) and any(r[COLUMN["home_address"]] for r in rows)


def test_same_seed_same_file_other_seed_other_file(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_sample(a, workers=500, seed=1, malformed=5, as_of=AS_OF)
    write_sample(b, workers=500, seed=1, malformed=5, as_of=AS_OF)
    write_sample(c, workers=500, seed=2, malformed=5, as_of=AS_OF)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()


def test_malformed_rows_are_of_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    write_sample(path, workers=300, seed=3, malformed=len(MALFORMED_KINDS), as_of=AS_OF)
    rows = _rows(path)
    assert len(rows) == 300 + len(MALFORMED_KINDS)
    bad = [r for r in rows if r[0].startswith("YX9")]
    assert len(bad) == len(MALFORMED_KINDS)
    assert any(r[COLUMN["gender"]] == "未知" for r in bad) and any(
        r[COLUMN["mobile"]] == "23812345678" for r in bad
    )


def test_cli_sample_takes_its_size_as_size_like_the_demo(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from outreach.cli import app

    out = tmp_path / "s.csv"
    made = CliRunner().invoke(app, ["registry", "sample", "--size", "25", "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 26
    old = CliRunner().invoke(app, ["registry", "sample", "--workers", "25", "--out", str(out)])
    assert old.exit_code == 2
