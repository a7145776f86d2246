"""名址库 pages: an upload imported in the background through the CLI's importer, its progress and result
(counts, rejects as a table and a CSV), search and views with masked mobiles, the blank template, refusals."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from audiences.models import RegistryImport, Unit, Worker
from audiences.sample import write_sample
from outreach.settings import get_settings
from tests.web.conftest import People, csrf_of, login


def _upload(client: TestClient, path: Path, *, token: str) -> str:
    with path.open("rb") as fh:
        response = client.post(
            "/registry/imports",
            data={"csrf_token": token},
            files={"file": (path.name, fh, "text/csv")},
            follow_redirects=False,
        )
    assert response.status_code == 303, response.text
    return str(response.headers["location"])


def _wait_for_result(client: TestClient, progress_url: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        page = client.get(progress_url, follow_redirects=False)
        if page.status_code == 303:
            return str(page.headers["location"])
        assert page.status_code == 200
        assert "<progress" in page.text or 'role="alert"' in page.text, page.text
        assert 'http-equiv="refresh"' in page.text or 'role="alert"' in page.text
        assert 'role="alert"' not in page.text, page.text
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_a_planner_uploads_the_sample_and_sees_the_rejects(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "尤溪县名册.csv"
    write_sample(path, workers=400, seed=3, malformed=5)
    login(client, "planner")
    page = client.get("/registry")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    progress = _upload(client, path, token=csrf_of(page.text))
    assert progress.startswith("/registry/uploads/")
    result_url = _wait_for_result(client, progress)
    result = client.get(result_url)
    assert result.status_code == 200
    with Session(committed_engine) as session:
        record = session.scalars(select(RegistryImport)).one()
        workers = session.scalar(select(func.count()).select_from(Worker))
    assert record.rejected == 5 and record.inserted == workers == 400
    assert f"/registry/imports/{record.id}" in result_url
    for label in ("新增", "更新", "未变", "拒收"):
        assert label in result.text
    rows = re.findall(r'<tr><td class="num">(\d+)</td>', result.text)
    assert len(rows) == 5
    csv_file = client.get(f"/registry/imports/{record.id}/rejects.csv")
    assert csv_file.status_code == 200 and csv_file.headers["content-type"].startswith("text/csv")
    assert all(line in csv_file.text for line in rows)
    # The same file again: nothing new, every good row unchanged.
    again = _wait_for_result(client, _upload(client, path, token=csrf_of(page.text)))
    second = client.get(again)
    assert re.search(r'count-n">400</span><span>未变', second.text)
    listing = client.get("/registry")
    assert listing.text.count("/registry/imports/") >= 2 and "尤溪县名册.csv" in listing.text


def test_a_file_that_is_not_a_registry_fails_clearly(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("这不是名册\n随便写的\n", encoding="utf-8")
    login(client, "planner")
    token = csrf_of(client.get("/registry").text)
    progress = _upload(client, path, token=token)
    deadline = time.monotonic() + 30
    while 'role="alert"' not in (page := client.get(progress, follow_redirects=False)).text:
        assert page.status_code == 200 and time.monotonic() < deadline
        time.sleep(0.1)
    assert "notes.csv" in page.text
    wrong_kind = client.post(
        "/registry/imports", data={"csrf_token": token}, files={"file": ("a.pdf", b"%PDF", "application/pdf")}
    )
    assert wrong_kind.status_code == 422 and ".csv" in wrong_kind.text


def test_an_upload_over_the_limit_is_refused(
    client: TestClient, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(client, "planner")
    token = csrf_of(client.get("/registry").text)
    monkeypatch.setattr(get_settings(), "upload_limit_mb", 1)
    big = io.BytesIO(b"x" * (1024 * 1024 + 10))
    refused = client.post(
        "/registry/imports", data={"csrf_token": token}, files={"file": ("big.csv", big, "text/csv")}
    )
    assert refused.status_code in (413, 422) and "1 MB" in refused.text


def test_search_and_view_mask_mobiles_except_for_admins(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "county.csv"
    write_sample(path, workers=50, seed=5)
    from audiences.importer import import_registry

    with Session(committed_engine) as session:
        import_registry(session=session, path=path)
        session.commit()
        worker = session.scalars(select(Worker).where(Worker.mobile.is_not(None)).limit(1)).one()
        unit = session.get(Unit, worker.unit_id)
        assert unit is not None and worker.mobile is not None
        name, mobile, unit_name = worker.name, worker.mobile, unit.name
    login(client, "planner")
    found = client.get("/registry", params={"q": name})
    assert f"/registry/workers/{worker.id}" in found.text and mobile not in found.text
    view = client.get(f"/registry/workers/{worker.id}")
    assert (
        view.status_code == 200 and mobile[:3] + "****" + mobile[-4:] in view.text and mobile not in view.text
    )
    units = client.get("/registry", params={"q": unit_name})
    assert f"/registry/units/{unit.id}" in units.text
    assert name in client.get(f"/registry/units/{unit.id}").text
    assert client.get("/registry/workers/999999").status_code == 404
    client.cookies.clear()
    login(client, "admin")
    assert mobile in client.get(f"/registry/workers/{worker.id}").text
    assert 'action="/registry/imports"' not in client.get("/registry").text


def test_the_blank_template_downloads(client: TestClient, people: People) -> None:
    login(client, "planner")
    response = client.get("/registry/template.xlsx")
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    headers = [c.value for c in next(book.worksheets[0].iter_rows(max_row=1))]
    assert "姓名" in headers and "单位名称" in headers


@pytest.mark.parametrize("who", ["shop", "approver", "finance"])
def test_the_registry_is_refused_to_others_in_chinese(client: TestClient, people: People, who: str) -> None:
    login(client, who)
    for url in ("/registry", "/registry/template.xlsx", "/registry/imports/1", "/registry/workers/1"):
        refused = client.get(url)
        assert refused.status_code == 403, url
        assert "<html" in refused.text and "registry.read" in refused.text


def test_a_print_shop_cannot_upload(client: TestClient, people: People) -> None:
    login(client, "shop")
    token = csrf_of(client.get("/portal").text)
    refused = client.post(
        "/registry/imports", data={"csrf_token": token}, files={"file": ("a.csv", b"x", "text/csv")}
    )
    assert refused.status_code == 403


def test_the_progress_page_polls_and_goes_on_to_the_result(client: TestClient, people: People) -> None:
    from outreach.web.pages.registry import ImportJob, _write_job

    job = ImportJob(
        token="t0ken-abc", filename="大名册.csv", size=40_000_000, rows=50_000, expected_rows=200_000
    )
    _write_job(job)
    login(client, "planner")
    page = client.get("/registry/uploads/t0ken-abc")
    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in page.text
    assert (
        'hx-trigger="every 1s"' in page.text
        and '<progress id="import-progress" max="100" value="25">' in page.text
    )
    assert "50,000" in page.text and "大名册.csv" in page.text
    fragment = client.get("/registry/uploads/t0ken-abc", headers={"HX-Request": "true"})
    assert "<progress" in fragment.text and "<html" not in fragment.text
    job.state, job.import_id = "done", 42
    _write_job(job)
    done = client.get("/registry/uploads/t0ken-abc", headers={"HX-Request": "true"})
    assert done.headers["HX-Redirect"] == "/registry/imports/42?upload=t0ken-abc"
    plain = client.get("/registry/uploads/t0ken-abc", follow_redirects=False)
    assert plain.status_code == 303 and plain.headers["location"].startswith("/registry/imports/42")
    assert client.get("/registry/uploads/nope").status_code == 404
    assert client.get("/registry/uploads/..%2F..%2Fetc").status_code == 404


def test_a_workbook_is_imported_like_a_csv(
    client: TestClient, people: People, committed_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "名册.xlsx"
    write_sample(path, workers=60, seed=9, malformed=2)
    login(client, "planner")
    token = csrf_of(client.get("/registry").text)
    with path.open("rb") as fh:
        response = client.post(
            "/registry/imports",
            data={"csrf_token": token},
            files={
                "file": (path.name, fh, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
            },
            follow_redirects=False,
        )
    result = client.get(_wait_for_result(client, str(response.headers["location"])))
    assert re.search(r'count-n">60</span><span>新增', result.text)
    sheets = re.findall(r"<tr><td>职工名册</td><td class=\"num\">(\d+)</td>", result.text)
    assert len(sheets) == 2  # a workbook's rejects name their sheet
