"""Registry imports over the API: the CLI's importer, its rejects, the upload limit, Idempotency-Key."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audiences.models import Worker
from tests.web.conftest import People

HEADER = (
    "工号,姓名,性别,出生日期,职工类别,手机号码,家庭邮编,困难职工,短信同意,"
    "单位名称,统一社会信用代码,单位类型,乡镇,单位邮编"
)


def unit_cells() -> str:
    from stdnum.cn import uscc

    base = "12350426MB0000001"
    return f"尤溪县第一中学,{base}{uscc.calc_check_digit(base)},学校,城关镇,365100"


def registry_csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode("gb18030")


def test_an_upload_goes_through_the_importer_with_its_rejects(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    unit = unit_cells()
    body = registry_csv(
        f"T001,王秀英,女,1980-03-01,教师,13900000001,,否,是,{unit}",
        f"T002,李桂英,女,1975-05-02,教师,139000000,,否,是,{unit}",  # a mobile too short
        f"T003,,女,1990-01-01,教师,13900000003,,否,是,{unit}",  # no name
    )
    headers = {**people.bearer("planner"), "Idempotency-Key": "import-1"}
    response = client.post(
        "/api/v1/registry/imports", files={"file": ("../../etc/名址.csv", body, "text/csv")}, headers=headers
    )
    assert response.status_code == 201, response.text
    result = response.json()
    assert (result["inserted"], result["rejected"]) == (1, 2)
    assert result["filename"] == "名址.csv" and result["encoding"]
    rejects = client.get(result["rejects_url"], headers=people.bearer("admin"))
    assert rejects.status_code == 200
    rows = list(csv.reader(io.StringIO(rejects.content.decode("utf-8-sig"))))
    assert any("姓名" in " ".join(r) for r in rows)
    again = client.post(
        "/api/v1/registry/imports", files={"file": ("名址.csv", body, "text/csv")}, headers=headers
    )
    assert again.status_code == 201 and again.json()["id"] == result["id"]
    assert (
        client.get(f"/api/v1/registry/imports/{result['id']}", headers=people.bearer("admin")).json()
        == result
    )
    with Session(committed_engine) as session:
        assert session.scalar(select(func.count()).select_from(Worker)) == 1


def test_strict_imports_nothing_and_bad_files_say_why(client: TestClient, people: People) -> None:
    unit = unit_cells()
    body = registry_csv(f"T001,王秀英,女,1980-03-01,教师,13900000001,,否,是,{unit}", f"T003,,女,,,,,,,{unit}")
    strict = client.post(
        "/api/v1/registry/imports",
        files={"file": ("r.csv", body, "text/csv")},
        data={"strict": "true"},
        headers=people.bearer("planner"),
    )
    assert strict.status_code == 201 and strict.json()["inserted"] == 0
    exe = client.post(
        "/api/v1/registry/imports",
        files={"file": ("x.exe", b"MZ", "application/octet-stream")},
        headers=people.bearer("planner"),
    )
    assert exe.status_code == 422 and ".csv" in exe.json()["detail"]
    garbage = client.post(
        "/api/v1/registry/imports",
        files={"file": ("r.xlsx", b"not a workbook", "application/octet-stream")},
        headers=people.bearer("planner"),
    )
    assert garbage.status_code == 422 and garbage.json()["detail"]
    assert client.get("/api/v1/registry/imports/999", headers=people.bearer("planner")).status_code == 404


def test_uploads_over_the_limit_are_refused_while_streaming(
    client: TestClient, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.settings import get_settings

    monkeypatch.setattr(get_settings(), "upload_limit_mb", 1)
    big = registry_csv(
        *[f"T{i:05d},王秀英,女,1980-03-01,教师,139{i:08d},,否,是,{unit_cells()}" for i in range(20_000)]
    )
    assert len(big) > 1 << 20
    response = client.post(
        "/api/v1/registry/imports",
        files={"file": ("big.csv", big, "text/csv")},
        headers=people.bearer("planner"),
    )
    assert response.status_code in (413, 422)
    assert "1 MB" in response.json()["detail"]
