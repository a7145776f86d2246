"""The print shop's portal and API: only its own batches, streamed downloads with checksums and Range,
progress only forward, returned letters that suppress and refund."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.models import Suppression
from outreach.accounts.auth_models import AuditEntry
from outreach.campaigns import service as campaigns
from outreach.ledger.models import LedgerEntry
from outreach.runs import service as runs
from outreach.runs.models import Batch, piece_number
from tests.runs.world import committed_world
from tests.web.conftest import People, csrf_of, login, make_batches
from workers.local import run_locally


def test_a_shop_lists_only_its_own_batches_newest_first(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    batches = make_batches(committed_engine, people, count=3, size=1000)
    listed = client.get("/api/v1/batches", headers=people.bearer("shop")).json()
    assert [b["id"] for b in listed["items"]] == sorted(batches.mine, reverse=True)
    assert listed["items"][0]["pieces"] == 10 and listed["items"][0]["state"] == "ready"
    page = client.get("/api/v1/batches?limit=2", headers=people.bearer("shop")).json()
    assert len(page["items"]) == 2
    rest = client.get(
        f"/api/v1/batches?limit=2&before={page['next_before']}", headers=people.bearer("shop")
    ).json()
    assert [b["id"] for b in rest["items"]] == [min(batches.mine)] and rest["next_before"] is None
    other = client.get("/api/v1/batches", headers=people.bearer("othershop")).json()
    assert [b["id"] for b in other["items"]] == [batches.theirs]


def test_another_shops_batch_or_a_guessed_id_is_404_never_the_file(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    batches = make_batches(committed_engine, people, count=1, size=1000)
    for path in (
        f"/api/v1/batches/{batches.theirs}",
        f"/api/v1/batches/{batches.theirs}/files/letters.pdf",
        f"/api/v1/batches/{batches.theirs + 1000}/files/letters.pdf",
        f"/api/v1/batches/{batches.mine[0]}/files/secrets",
    ):
        response = client.get(path, headers=people.bearer("shop"))
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 404
    posted = client.post(
        f"/api/v1/batches/{batches.theirs}/state", json={"state": "printed"}, headers=people.bearer("shop")
    )
    assert posted.status_code == 404
    with Session(committed_engine) as session:
        assert session.get(Batch, batches.theirs).state == "ready"  # type: ignore[union-attr]


def test_download_streams_the_file_with_its_sha256_and_resumes_with_range(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    batches = make_batches(committed_engine, people, count=1, size=600_000)
    url = f"/api/v1/batches/{batches.mine[0]}/files/letters.pdf"
    whole = client.get(url, headers=people.bearer("shop"))
    assert whole.status_code == 200
    digest = hashlib.sha256(whole.content).hexdigest()
    assert whole.content == batches.file_bytes
    assert whole.headers["x-content-sha256"] == digest and whole.headers["etag"] == f'"{digest}"'
    assert whole.headers["accept-ranges"] == "bytes"
    # A broken download resumes where it stopped.
    head = client.get(url, headers={**people.bearer("shop"), "Range": "bytes=0-99999"})
    tail = client.get(url, headers={**people.bearer("shop"), "Range": "bytes=100000-"})
    assert (head.status_code, tail.status_code) == (206, 206)
    assert (
        tail.headers["content-range"]
        == f"bytes 100000-{len(batches.file_bytes) - 1}/{len(batches.file_bytes)}"
    )
    assert hashlib.sha256(head.content + tail.content).hexdigest() == digest
    suffix = client.get(url, headers={**people.bearer("shop"), "Range": "bytes=-5"})
    assert suffix.content == b"%%EOF"
    stale = client.get(url, headers={**people.bearer("shop"), "Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and len(stale.content) == len(batches.file_bytes)
    beyond = client.get(url, headers={**people.bearer("shop"), "Range": f"bytes={len(batches.file_bytes)}-"})
    assert beyond.status_code == 416
    with Session(committed_engine) as session:
        downloads = session.scalars(select(AuditEntry).where(AuditEntry.action == "batch.download")).all()
    assert len(downloads) == 5 and {d.username for d in downloads} == {"shop"}


def test_progress_only_moves_forward(client: TestClient, people: People, committed_engine: Engine) -> None:
    batches = make_batches(committed_engine, people, count=1, size=1000)
    url = f"/api/v1/batches/{batches.mine[0]}/state"
    shop = people.bearer("shop")
    assert client.post(url, json={"state": "downloaded"}, headers=shop).json()["state"] == "downloaded"
    assert client.post(url, json={"state": "mailed"}, headers=shop).json()["state"] == "mailed"
    back = client.post(url, json={"state": "printed"}, headers=shop)
    assert back.status_code == 409 and back.json()["type"].endswith("/wrong-state")
    assert client.post(url, json={"state": "lost"}, headers=shop).status_code == 422
    with Session(committed_engine) as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.object_type == "batch")).all()
    assert [e.action for e in entries] == ["batch.downloaded", "batch.mailed"]
    assert entries[0].before_digest != entries[0].after_digest


def test_portal_pages_list_show_download_and_report(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    batches = make_batches(committed_engine, people, count=2, size=5000)
    login(client, "shop")
    home = client.get("/")
    assert home.url.path == "/portal"
    assert "尤溪邮政印务中心" in home.text and "俏佳人-mine" in home.text and "俏佳人-theirs" not in home.text
    detail = client.get(f"/portal/batches/{batches.mine[0]}")
    digest = hashlib.sha256(batches.file_bytes).hexdigest()
    assert digest in detail.text
    assert client.get(f"/portal/batches/{batches.mine[0]}/files/letters.pdf").content == batches.file_bytes
    assert client.get(f"/portal/batches/{batches.theirs}").status_code == 404
    token = csrf_of(detail.text)
    forged = client.post(f"/portal/batches/{batches.mine[0]}/state", data={"state": "printed"})
    assert forged.status_code == 403
    done = client.post(
        f"/portal/batches/{batches.mine[0]}/state", data={"state": "printed", "csrf_token": token}
    )
    assert done.status_code == 200 and "已记录" in done.text
    with Session(committed_engine) as session:
        assert session.get(Batch, batches.mine[0]).state == "printed"  # type: ignore[union-attr]


def test_returned_letters_suppress_and_refund(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    world = committed_world(committed_engine, women=6, batch_size=10, print_shop=people.shop.name)
    with Session(committed_engine) as session, session.begin():
        campaign = campaigns.get_by_name(session=session, name=world.campaign)
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    with Session(committed_engine) as session:
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
    login(client, "shop")
    detail = client.get(f"/portal/batches/{batch.id}")
    assert detail.status_code == 200
    first, outside = piece_number(run_id, 1), piece_number(run_id, 99)
    refused = client.post(
        f"/portal/batches/{batch.id}/returns", data={"numbers": outside, "csrf_token": csrf_of(detail.text)}
    )
    assert refused.status_code == 422 and outside in refused.text
    scanned = f"件号\n{first}\n{piece_number(run_id, 2)}\n"
    response = client.post(
        f"/portal/batches/{batch.id}/returns",
        data={"csrf_token": csrf_of(detail.text), "reason": "undeliverable"},
        files={"file": ("scan.csv", scanned.encode(), "text/csv")},
    )
    assert response.status_code == 200, response.text
    with Session(committed_engine) as session:
        assert (
            len(session.scalars(select(Suppression).where(Suppression.reason == "returned_mail")).all()) == 2
        )
        refunds = session.scalars(select(LedgerEntry).where(LedgerEntry.kind == "refund")).all()
    assert len(refunds) in (0, 2)  # the world's rate card decides whether returns are refunded
    other = client.post(
        f"/api/v1/batches/{batch.id}/returns", json={"numbers": [first]}, headers=people.bearer("othershop")
    )
    assert other.status_code == 404


def test_returned_numbers_are_read_from_typed_text_and_scanner_csv() -> None:
    from outreach.errors import InputError
    from outreach.web.printshops import parse_numbers

    assert parse_numbers("r000001-0000002\n\nR000001-0000003, R000001-0000002") == [
        "R000001-0000002",
        "R000001-0000003",
    ]
    assert parse_numbers("\n件号,备注\nR000001-0000001,\n") == ["R000001-0000001"]
    try:
        parse_numbers("R000001-0000001\nR1-2\n")
    except InputError as exc:
        assert "第 2 行" in str(exc) and "R1-2" in str(exc)
    else:
        raise AssertionError("R1-2 was taken")


def test_admins_read_the_audit_log_page_and_others_do_not(client: TestClient, people: People) -> None:
    login(client, "shop")
    assert client.get("/audit").status_code == 403
    client.cookies.clear()
    login(client, "admin")
    home = client.get("/")
    assert 'href="/audit"' in home.text
    page = client.get("/audit?action=access.denied")
    assert page.status_code == 200 and "审计日志" in page.text and "access.denied" in page.text
    assert "<td>shop</td>" in page.text
    assert "没有符合条件的记录" in client.get("/audit?account=nobody").text
    assert client.get("/audit?since=not-a-date").status_code == 422


def test_a_batch_downloads_as_one_zip_of_its_files(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    import io
    import zipfile

    batches = make_batches(committed_engine, people, count=1, size=300_000)
    response = client.get(f"/api/v1/batches/{batches.mine[0]}/zip", headers=people.bearer("shop"))
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.namelist() == ["letters.pdf"]
        assert archive.read("letters.pdf") == batches.file_bytes
    again = client.get(f"/api/v1/batches/{batches.mine[0]}/zip", headers=people.bearer("shop"))
    assert again.content == response.content  # the same batch zips to the same bytes
    assert (
        client.get(f"/api/v1/batches/{batches.theirs}/zip", headers=people.bearer("shop")).status_code == 404
    )
    assert (
        client.get(f"/api/v1/batches/{batches.mine[0]}/zip", headers=people.bearer("planner")).status_code
        == 403
    )


def test_a_mailing_is_dated_by_the_shop_within_reason(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    from datetime import timedelta

    from outreach.periods import local_date

    batches = make_batches(committed_engine, people, count=1, size=100)
    url = f"/api/v1/batches/{batches.mine[0]}/state"
    shop = people.bearer("shop")
    tomorrow = (local_date() + timedelta(days=1)).isoformat()
    future = client.post(url, json={"state": "mailed", "mailed_on": tomorrow}, headers=shop)
    assert future.status_code == 422 and "交寄日期" in future.json()["detail"]
    wrong = client.post(url, json={"state": "printed", "mailed_on": local_date().isoformat()}, headers=shop)
    assert wrong.status_code == 422
    today = local_date().isoformat()
    mailed = client.post(url, json={"state": "mailed", "mailed_on": today}, headers=shop)
    assert mailed.status_code == 200 and mailed.json()["state"] == "mailed"
    with Session(committed_engine) as session:
        stored = session.get(Batch, batches.mine[0])
        assert stored is not None and stored.mailed_at is not None
        assert local_date(stored.mailed_at).isoformat() == today
