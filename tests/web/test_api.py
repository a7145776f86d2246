"""The API's shape: every role against every endpoint (the permission matrix), problem documents, the
OpenAPI document, /healthz, the audit log API, Idempotency-Key."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from audiences.models import Audience
from outreach.accounts.auth_models import AuditEntry
from tests.web.conftest import People, make_batches

ROLES = ("admin", "planner", "approver", "finance", "shop")
UNION = {"admin", "planner", "approver", "finance"}

# Every endpoint, and exactly who may call it. A role not listed gets 403; no credentials get 401.
MATRIX: list[tuple[str, str, dict[str, object] | None, set[str]]] = [
    ("GET", "/api/v1/me", None, set(ROLES)),
    ("GET", "/api/v1/batches", None, {"shop"}),
    ("GET", "/api/v1/batches/{batch}", None, {"shop"}),
    ("GET", "/api/v1/batches/{batch}/files/letters.pdf", None, {"shop"}),
    ("GET", "/api/v1/batches/{batch}/zip", None, {"shop"}),
    ("POST", "/api/v1/batches/{batch}/state", {"state": "downloaded"}, {"shop"}),
    ("POST", "/api/v1/batches/{batch}/returns", {"numbers": []}, {"shop"}),
    ("GET", "/api/v1/audit", None, {"admin"}),
    ("GET", "/api/v1/audit/export.csv", None, {"admin"}),
    ("GET", "/api/v1/processing-log", None, {"admin"}),
    ("POST", "/api/v1/audiences/count", {"expression": "gender = 'F'"}, {"admin", "planner"}),
    ("POST", "/api/v1/audiences/preview", {"expression": "gender = 'F'"}, {"admin", "planner"}),
    ("POST", "/api/v1/audiences", {"name": "女职工2", "expression": "gender = 'F'"}, {"planner"}),
    ("GET", "/api/v1/campaigns", None, UNION),
    ("POST", "/api/v1/registry/imports", None, {"planner"}),
    ("GET", "/api/v1/registry/imports/1", None, {"admin", "planner"}),
    ("GET", "/api/v1/registry/imports/1/rejects", None, {"admin", "planner"}),
    ("GET", "/api/v1/runs/{run}", None, UNION),
    ("POST", "/api/v1/runs", {"campaign": "俏佳人-mine", "period": "2027-Q1"}, {"planner"}),
    ("POST", "/api/v1/runs/{run}/resume", None, {"planner"}),
    ("POST", "/api/v1/runs/{run}/cancel", None, {"planner"}),
]


def test_every_role_against_every_endpoint(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    batches = make_batches(committed_engine, people, count=1, size=1000)
    table: dict[tuple[str, str], str] = {}
    for method, template, body, allowed in MATRIX:
        path = template.format(batch=batches.mine[0], run=batches.run_id)
        anonymous = client.request(method, path, json=body)
        assert anonymous.status_code == 401, (path, anonymous.text)
        for who in ROLES:
            response = client.request(method, path, json=body, headers=people.bearer(who))
            if who in allowed:
                # Allowed means past authorisation: success, or a refusal of the input itself (empty returns).
                assert response.status_code not in (401, 403), (who, path, response.text)
                table[(who, path)] = "allowed"
            else:
                assert response.status_code == 403, (who, path, response.status_code)
                assert response.headers["content-type"] == "application/problem+json"
                table[(who, path)] = "denied"
    assert sum(v == "allowed" for v in table.values()) == sum(len(a) for *_, a in MATRIX)
    with Session(committed_engine) as session:
        denied = session.scalars(select(AuditEntry).where(AuditEntry.action == "access.denied")).all()
    assert len(denied) == sum(len(set(ROLES) - a) for *_, a in MATRIX)


def test_a_query_error_is_a_problem_with_its_position(client: TestClient, people: People) -> None:
    response = client.post(
        "/api/v1/audiences/count",
        json={"expression": "gender = 'F' and agee > 3"},
        headers=people.bearer("planner"),
    )
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["type"].endswith("/query-error") and problem["title"] == "受众表达式有误"
    assert problem["position"] == len("gender = 'F' and ")
    assert "^" in problem["detail"]


def test_a_malformed_request_is_a_problem_naming_the_field(client: TestClient, people: People) -> None:
    response = client.post("/api/v1/audiences/count", json={"by": "x"}, headers=people.bearer("planner"))
    assert response.status_code == 422
    assert "expression" in response.json()["detail"] and response.json()["title"] == "请求有误"
    unknown = client.get("/api/v1/nothing-here", headers=people.bearer("planner"))
    assert unknown.status_code == 404 and unknown.json()["title"] == "未找到"


def test_counts_previews_campaigns(client: TestClient, people: People, committed_engine: Engine) -> None:
    counted = client.post(
        "/api/v1/audiences/count",
        json={"expression": "gender = 'F'", "by": "unit.township"},
        headers=people.bearer("planner"),
    )
    assert counted.status_code == 200 and counted.json()["total"] == 0
    preview = client.post(
        "/api/v1/audiences/preview", json={"expression": "gender = 'F'"}, headers=people.bearer("admin")
    )
    assert preview.status_code == 200 and preview.json()["sample"] == []
    make_batches(committed_engine, people, count=1, size=10)
    names = [c["name"] for c in client.get("/api/v1/campaigns", headers=people.bearer("finance")).json()]
    assert sorted(names) == ["俏佳人-mine", "俏佳人-theirs"]
    assert client.get("/api/v1/runs/999999", headers=people.bearer("finance")).status_code == 404


def test_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    headers = {**people.bearer("planner"), "Idempotency-Key": "save-1"}
    first = client.post(
        "/api/v1/audiences", json={"name": "困难职工", "expression": "hardship"}, headers=headers
    )
    assert first.status_code == 201, first.text
    again = client.post(
        "/api/v1/audiences", json={"name": "困难职工", "expression": "hardship"}, headers=headers
    )
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    other = client.post("/api/v1/audiences", json={"name": "别的", "expression": "hardship"}, headers=headers)
    assert other.status_code == 409 and other.json()["type"].endswith("/conflict")
    with Session(committed_engine) as session:
        assert session.scalars(select(Audience.name)).all() == ["困难职工"]
        saves = session.scalars(select(AuditEntry).where(AuditEntry.action == "audience.save")).all()
    assert len(saves) == 1


def test_admins_read_and_export_the_audit_log(client: TestClient, people: People) -> None:
    for _ in range(3):
        client.get("/api/v1/audit", headers=people.bearer("shop"))  # denied, audited
    page = client.get("/api/v1/audit?action=access.denied&limit=2", headers=people.bearer("admin")).json()
    assert [e["action"] for e in page["items"]] == ["access.denied"] * 2
    assert page["items"][0]["id"] > page["items"][1]["id"] and page["items"][0]["username"] == "shop"
    rest = client.get(
        f"/api/v1/audit?action=access.denied&limit=2&before={page['next_before']}",
        headers=people.bearer("admin"),
    ).json()
    assert len(rest["items"]) == 1
    assert client.get("/api/v1/audit?account=nobody", headers=people.bearer("admin")).json()["items"] == []
    exported = client.get("/api/v1/audit/export.csv?account=shop", headers=people.bearer("admin"))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) >= 3 and {r["username"] for r in rows} == {"shop"}


def test_openapi_is_served_with_chinese_descriptions(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/batches/{batch_id}/files/{role}" in doc["paths"]
    assert doc["paths"]["/api/v1/batches"]["get"]["summary"] == "本印刷厂的批次"
    assert "印刷厂" in doc["info"]["description"]


def test_healthz_checks_the_database_and_a_configured_redis(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.settings import get_settings

    assert client.get("/healthz").json() == {"status": "ok", "checks": {"database": "ok"}}
    monkeypatch.setattr(get_settings(), "broker_url", "redis://127.0.0.1:1/0")
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json()["checks"]["redis"] != "ok"
    monkeypatch.setattr(get_settings(), "broker_url", "redis://127.0.0.1:6379/0")
    assert client.get("/healthz").json()["checks"] == {"database": "ok", "redis": "ok"}


def test_uploads_over_the_limit_are_refused(client: TestClient, people: People) -> None:
    from outreach.settings import get_settings

    limit = get_settings().upload_limit_mb * 1024 * 1024
    response = client.post(
        "/api/v1/batches/1/returns",
        content=b"x",
        headers={
            **people.bearer("shop"),
            "Content-Length": str(limit + 1),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 413


def test_a_planner_starts_a_run_once_per_idempotency_key(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    import time

    from outreach.runs.models import Run
    from tests.runs.world import committed_world

    world = committed_world(committed_engine, women=6, batch_size=10, print_shop=people.shop.name)
    headers = {**people.bearer("planner"), "Idempotency-Key": "start-2027-Q1"}
    body = {"campaign": world.campaign, "period": "2027-Q1"}
    started = client.post("/api/v1/runs", json=body, headers=headers)
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    again = client.post("/api/v1/runs", json=body, headers=headers)
    assert again.json() == started.json() and again.headers["idempotent-replayed"] == "true"
    other = client.post("/api/v1/runs", json={**body, "period": "2027-Q2"}, headers=headers)
    assert other.status_code == 409
    deadline = time.monotonic() + 120
    while (state := client.get(f"/api/v1/runs/{run_id}", headers=headers).json()["state"]) not in (
        "done",
        "stalled",
    ):
        assert time.monotonic() < deadline, state
        time.sleep(0.5)
    assert state == "done"
    from outreach.runs import executor

    for child in executor._children:  # the background process the request started: let it exit
        child.wait(timeout=60)
    with Session(committed_engine) as session:
        assert len(session.scalars(select(Run)).all()) == 1
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "run")).all() == [
            "run.start"
        ]
    unapproved = client.post(
        "/api/v1/runs", json={**body, "period": "2027-Q3"}, headers=people.bearer("planner")
    )
    assert unapproved.status_code == 409 and unapproved.json()["type"].endswith("/wrong-state")
    done = client.post(f"/api/v1/runs/{run_id}/cancel", headers=people.bearer("planner"))
    assert done.status_code == 409


def test_the_processing_log_lists_hand_overs_with_fields_digests_and_downloads(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    batches = make_batches(committed_engine, people, count=2, size=1000)
    client.get(f"/api/v1/batches/{batches.mine[0]}/files/letters.pdf", headers=people.bearer("shop"))
    log = client.get(f"/api/v1/processing-log?shop={people.shop.id}", headers=people.bearer("admin")).json()
    assert [h["batch_id"] for h in log["items"]] == sorted(batches.mine, reverse=True)
    first = log["items"][-1]
    assert first["shop"] == "尤溪邮政印务中心" and first["records"] == 10
    assert set(first["fields"]) == {"piece", "name", "unit", "address", "postcode"}
    assert "mobile" not in first["fields"] and first["digests"]["letters.pdf"]
    assert [(d["username"], d["detail"]) for d in first["downloads"]] == [("shop", "letters.pdf")]
    assert log["items"][0]["downloads"] == []
    everyone = client.get("/api/v1/processing-log", headers=people.bearer("admin")).json()
    assert {h["shop"] for h in everyone["items"]} == {"尤溪邮政印务中心", "三明彩印厂"}


def test_concurrent_requests_with_one_fresh_token_all_finish(site: str, people: People) -> None:
    # The first use of a token writes its use (a row lock until commit); the requests waiting for that lock
    # must not block the event loop, or the request holding it could never finish.
    import json
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    def count(_: int) -> int:
        request = urllib.request.Request(
            f"{site}/api/v1/audiences/count",
            data=json.dumps({"expression": "gender = 'F'"}).encode(),
            headers={**people.bearer("planner"), "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status)

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(count, range(16))) == [200] * 16
