"""Accounts, Argon2 passwords, throttled sign-in, sessions, CSRF, API tokens, the CLI's `outreach user`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from outreach.accounts import audit, tokens, users
from outreach.accounts.auth_models import Account, ApiToken, AuditEntry, LoginAttempt, WebSession
from outreach.accounts.models import Organisation
from outreach.db import utcnow
from outreach.errors import Conflict, InputError
from tests.web.conftest import PASSWORD, People, csrf_of, login


def actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_passwords_are_argon2_and_roles_follow_the_organisation(session: Session) -> None:
    union = Organisation(kind="union", name="总工会", active=True)
    shop = Organisation(kind="printshop", name="印务中心", active=True)
    session.add_all([union, shop])
    session.flush()
    account = users.add(
        session=session, username="Wang.Li", password=PASSWORD, role="planner", organisation=union
    )
    assert account.username == "wang.li"
    assert account.password_hash.startswith("$argon2id$") and PASSWORD not in account.password_hash
    with pytest.raises(InputError, match="printshop"):
        users.add(session=session, username="p2", password=PASSWORD, role="planner", organisation=shop)
    with pytest.raises(InputError):
        users.add(session=session, username="x", password="short", role="planner", organisation=union)
    with pytest.raises(InputError):
        users.add(session=session, username="a b", password=PASSWORD, role="planner", organisation=union)
    with pytest.raises(InputError):
        users.add(session=session, username="boss", password=PASSWORD, role="root", organisation=union)
    with pytest.raises(Conflict):
        users.add(session=session, username="wang.li", password=PASSWORD, role="finance", organisation=union)


def test_sign_in_sets_an_httponly_lax_cookie_and_stores_only_its_hash(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    page = client.get("/login")
    assert page.status_code == 200 and "登录" in page.text
    response = client.post(
        "/login",
        data={"username": "shop", "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith("outreach_session="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    secret = cookie.split(";")[0].split("=", 1)[1]
    with Session(committed_engine) as session:
        stored = session.scalars(select(WebSession.id_hash)).all()
    assert stored == [users.hash_secret(secret)] and secret not in stored
    assert client.get("/api/v1/me").json()["username"] == "shop"
    assert "login" in actions(committed_engine)


def test_a_wrong_password_is_refused_and_audited(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    page = client.get("/login")
    response = client.post(
        "/login", data={"username": "shop", "password": "wrong password", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 401
    assert "账号或密码错误" in response.text
    assert client.get("/api/v1/me").status_code == 401
    assert actions(committed_engine) == ["login.failed"]


def test_sign_in_is_throttled_per_account_then_refuses_the_right_password(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    for _ in range(users.MAX_FAILURES_PER_ACCOUNT):
        page = client.get("/login")
        client.post(
            "/login", data={"username": "shop", "password": "nope nope", "csrf_token": csrf_of(page.text)}
        )
    page = client.get("/login")
    response = client.post(
        "/login", data={"username": "shop", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 429
    assert "登录失败次数过多" in response.text
    assert actions(committed_engine)[-1] == "login.throttled"
    # Another account from the same address still signs in (the address limit is higher).
    login(client, "planner")
    # The window slides: failures older than it no longer count.
    with Session(committed_engine) as session, session.begin():
        session.execute(
            update(LoginAttempt).values(at=utcnow() - users.THROTTLE_WINDOW - timedelta(seconds=1))
        )
    login(client, "shop")


def test_sign_in_is_throttled_per_address(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    with Session(committed_engine) as session, session.begin():
        for i in range(users.MAX_FAILURES_PER_ADDRESS):
            session.add(LoginAttempt(username=f"guess{i}", address="testclient", at=utcnow()))
    page = client.get("/login")
    response = client.post(
        "/login", data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 429


def test_the_login_form_needs_its_csrf_token(client: TestClient, people: People) -> None:
    client.get("/login")
    response = client.post("/login", data={"username": "shop", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 403
    assert client.get("/api/v1/me").status_code == 401


def test_form_posts_need_the_session_csrf_token(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    login(client, "planner")
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert client.post("/logout", data={"csrf_token": "guess"}, follow_redirects=False).status_code == 403
    assert actions(committed_engine).count("csrf.refused") == 2
    home = client.get("/")
    assert (
        client.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False).status_code
        == 303
    )
    assert client.get("/api/v1/me").status_code == 401


def test_a_disabled_account_cannot_sign_in_and_loses_its_sessions_and_tokens(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    login(client, "shop")
    with Session(committed_engine) as session, session.begin():
        users.disable(session=session, username="shop")
    assert client.get("/api/v1/me").status_code == 401
    refused = client.get("/api/v1/me", headers=people.bearer("shop"))
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/problem+json")
    page = client.get("/login")
    response = client.post(
        "/login", data={"username": "shop", "password": PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 403 and "已停用" in response.text


def test_api_tokens_are_hashed_expire_and_can_be_revoked(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    assert client.get("/api/v1/me", headers=people.bearer("finance")).json()["role"] == "finance"
    with Session(committed_engine) as session:
        assert people.tokens["finance"] not in session.scalars(select(ApiToken.token_hash)).all()
    with Session(committed_engine) as session, session.begin():
        account = users.get(session=session, username="finance")
        row = tokens.resolve(session=session, secret=people.tokens["finance"])[0]
        row.expires_at = utcnow() - timedelta(seconds=1)
    expired = client.get("/api/v1/me", headers=people.bearer("finance"))
    assert expired.status_code == 401 and "已过期" in expired.json()["detail"]
    with Session(committed_engine) as session, session.begin():
        account = users.get(session=session, username="planner")
        row = tokens.resolve(session=session, secret=people.tokens["planner"])[0]
        tokens.revoke(session=session, account=account, token_id=row.id)
    revoked = client.get("/api/v1/me", headers=people.bearer("planner"))
    assert revoked.status_code == 401 and "已吊销" in revoked.json()["detail"]
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer otk_guess"}).status_code == 401
    assert actions(committed_engine).count("token.refused") == 3
    assert "token.used" in actions(committed_engine)


def test_the_audit_log_refuses_updates(committed_engine: Engine) -> None:
    with Session(committed_engine) as session, session.begin():
        audit.record(session=session, actor=audit.Actor(username="cli"), action="test")
    with pytest.raises(DBAPIError), Session(committed_engine) as session, session.begin():
        session.execute(text("UPDATE audit_log SET action = 'forged'"))
    if committed_engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError), Session(committed_engine) as session, session.begin():
            session.execute(text("DELETE FROM audit_log"))
    assert actions(committed_engine) == ["test"]


def test_cli_user_add_list_token_disable(committed_engine: Engine) -> None:
    from typer.testing import CliRunner

    from outreach.cli import app

    runner = CliRunner()
    added = runner.invoke(
        app,
        ["user", "add", "boss", "--org", "尤溪县总工会", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.output
    with Session(committed_engine) as session:
        org = session.scalars(select(Organisation)).one()
        assert (org.kind, org.name) == ("union", "尤溪县总工会")
    issued = runner.invoke(app, ["user", "token", "boss", "--days", "7"])
    assert issued.exit_code == 0, issued.output
    secret = issued.output.strip().splitlines()[-1]
    assert secret.startswith("otk_")
    with Session(committed_engine) as session:
        assert tokens.resolve(session=session, secret=secret)[1].username == "boss"
    listed = runner.invoke(app, ["user", "list"])
    assert "boss" in listed.output
    short = runner.invoke(
        app,
        ["user", "add", "shop1", "--org", "没有这个厂", "--role", "printshop", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert short.exit_code == 1
    assert runner.invoke(app, ["user", "disable", "boss"]).exit_code == 0
    with Session(committed_engine) as session:
        assert session.scalars(select(Account.active)).one() is False
    assert {"account.add", "token.issue", "account.disable"} <= set(actions(committed_engine))


def test_old_sessions_and_attempts_are_dropped(
    client: TestClient, people: People, committed_engine: Engine
) -> None:
    login(client, "shop")
    with Session(committed_engine) as session, session.begin():
        session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.add(LoginAttempt(username="old", address="x", at=utcnow() - users.THROTTLE_WINDOW * 2))
    assert client.get("/api/v1/me").status_code == 401  # the expired session no longer signs in
    client.cookies.clear()
    login(client, "shop")
    page = client.get("/login")
    client.post("/login", data={"username": "nobody", "password": "x" * 12, "csrf_token": csrf_of(page.text)})
    with Session(committed_engine) as session:
        assert len(session.scalars(select(WebSession)).all()) == 1
        assert session.scalars(select(LoginAttempt.username)).all() == ["nobody"]


def test_a_browser_session_posting_json_needs_the_csrf_header(client: TestClient, people: People) -> None:
    login(client, "planner")
    body = {"expression": "gender = 'F'"}
    refused = client.post("/api/v1/audiences/count", json=body)
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    token = csrf_of(client.get("/").text)
    assert (
        client.post("/api/v1/audiences/count", json=body, headers={"X-CSRF-Token": token}).status_code == 200
    )
