"""The web service under FastAPI's TestClient, over the test database (committed, emptied after each test)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from audiences.models import Audience
from outreach.accounts import tokens, users
from outreach.accounts.models import Organisation
from outreach.campaigns.models import Campaign
from outreach.runs.models import Batch, Run
from outreach.storage import get_storage
from outreach.web.app import create_app

PASSWORD = "correct horse battery"
UNION_ROLES = ("admin", "planner", "approver", "finance")


@pytest.fixture
def client(committed_engine: Engine) -> Iterator[TestClient]:
    """A client of the app; the app's sessions use the test database, emptied after the test."""
    with TestClient(create_app(), base_url="http://testserver") as c:
        yield c


@dataclass
class Org:
    id: int
    name: str


@dataclass
class People:
    """A union, two print shops, an account per role, and an API token per account."""

    union: Org
    shop: Org
    other_shop: Org
    tokens: dict[str, str] = field(default_factory=dict)

    def bearer(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def add_org(session: Session, kind: str, name: str) -> Org:
    org = Organisation(kind=kind, name=name, active=True)
    session.add(org)
    session.flush()
    return Org(org.id, org.name)


@pytest.fixture
def people(committed_engine: Engine) -> People:
    with Session(committed_engine) as session, session.begin():
        union = add_org(session, "union", "尤溪县总工会")
        shop = add_org(session, "printshop", "尤溪邮政印务中心")
        other = add_org(session, "printshop", "三明彩印厂")
        found = People(union=union, shop=shop, other_shop=other)
        accounts = [(role, union.id, role) for role in UNION_ROLES]
        accounts += [("printshop", shop.id, "shop"), ("printshop", other.id, "othershop")]
        for role, org_id, name in accounts:
            org = session.get(Organisation, org_id)
            assert org is not None
            account = users.add(
                session=session, username=name, password=PASSWORD, role=role, organisation=org
            )
            found.tokens[name] = tokens.issue(session=session, account=account, name="test")[1]
    return found


def login(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    """Signs the client in through the form; returns it (its cookies now hold the session)."""
    page = client.get("/login")
    token = csrf_of(page.text)
    response = client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return client


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


@dataclass
class ShopBatches:
    """Batches of a letter run assigned to the shop, and one assigned to the other shop."""

    mine: list[int]
    theirs: int
    run_id: int
    file_bytes: bytes


def make_batches(engine: Engine, people: People, *, count: int = 3, size: int = 300_000) -> ShopBatches:
    """Runs with stored batch files, without rendering: the portal only reads what assembling recorded."""
    storage = get_storage()
    content = bytes(range(256)) * (size // 256) + b"%%EOF"
    digest = hashlib.sha256(content).hexdigest()
    with Session(engine) as session, session.begin():
        audience = Audience(name="女职工", expression="gender = 'F'")
        session.add(audience)
        session.flush()
        ids: dict[str, list[int]] = {"mine": [], "theirs": []}
        run_ids: dict[str, int] = {}
        for who, shop_id in (("mine", people.shop.id), ("theirs", people.other_shop.id)):
            campaign = Campaign(
                name=f"俏佳人-{who}",
                channel="letter",
                audience_id=audience.id,
                kit="qiaojiaren",
                rate_card_code="rc",
                print_shop_id=shop_id,
            )
            session.add(campaign)
            session.flush()
            run = Run(
                campaign_id=campaign.id, period="2027-Q1", state="done", piece_count=count * 10, batch_size=10
            )
            session.add(run)
            session.flush()
            run_ids[who] = run.id
            for seq in range(1, (count if who == "mine" else 1) + 1):
                key = f"run-{run.id}/batch-{seq:03d}/letters.pdf"
                tmp = Path(storage.locate(key) + ".src") if hasattr(storage, "root") else Path("/tmp/x")
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(content)
                storage.put(key, tmp)
                tmp.unlink()
                batch = Batch(
                    run_id=run.id,
                    seq=seq,
                    first_seq=(seq - 1) * 10 + 1,
                    last_seq=seq * 10,
                    pieces=10,
                    pages=20,
                    files={"letters.pdf": {"key": key, "sha256": digest, "bytes": len(content)}},
                    state="ready",
                )
                session.add(batch)
                session.flush()
                ids[who].append(batch.id)
    return ShopBatches(mine=ids["mine"], theirs=ids["theirs"][0], run_id=run_ids["mine"], file_bytes=content)


def busy_quarter(engine: Engine, people: People) -> tuple[str, int]:
    """This quarter with two campaigns of the shop: 俏佳人 (8 women, a budget of ¥6,000, its run done five
    days ago with one piece failed) and 金秋助学 (never approved). The period and the run's id."""
    from datetime import timedelta

    from sqlalchemy import select

    from outreach.campaigns import service as campaigns
    from outreach.db import utcnow
    from outreach.ledger import budgets
    from outreach.periods import local_date, quarter_of
    from outreach.runs import service as runs
    from outreach.runs.models import Piece
    from tests.runs.world import committed_world
    from workers.local import run_locally

    period = str(quarter_of(local_date()))
    world = committed_world(
        engine, name="俏佳人", women=8, period=period, schedule="quarterly", print_shop=people.shop.name
    )
    committed_world(
        engine, name="金秋助学", women=2, period=None, schedule="quarterly", print_shop=people.shop.name
    )
    with Session(engine) as session, session.begin():
        budgets.set_budget(
            session=session, campaign_id=world.campaign_id, period=period.split("-")[0], amount_fen=600_000
        )
        campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
        run_id = runs.start(session=session, campaign=campaign, period=period).id
    run_locally(run_id)
    with Session(engine) as session, session.begin():
        piece = session.scalars(select(Piece).where(Piece.run_id == run_id).limit(1)).one()
        piece.state, piece.error = "failed", "字体缺字"
        run = session.get(Run, run_id)
        assert run is not None and run.state == "done"
        run.finished_at = utcnow() - timedelta(days=5)
    return period, run_id
