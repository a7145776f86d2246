"""Factories for registry rows, inserted directly (no importer) so audience tests control every field."""

from __future__ import annotations

import itertools
import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from audiences.models import Unit, Worker

_numbers = itertools.count(1)


def make_unit(session: Session, *, name: str | None = None, **fields: Any) -> Unit:
    """A work unit; defaults to an enterprise in 城关镇 with an address and postcode."""
    values: dict[str, Any] = {
        "kind": "企业",
        "township": "城关镇",
        "industry": "制造业",
        "address": "城关镇解放路1号",
        "postcode": "365100",
    }
    values.update(fields)
    unit = Unit(key=f"test-unit-{uuid.uuid4().hex}", name=name or f"测试单位{next(_numbers)}", **values)
    session.add(unit)
    session.flush()
    return unit


def make_worker(session: Session, unit: Unit, *, name: str | None = None, **fields: Any) -> Worker:
    """A worker at `unit`; defaults to a woman born 1985 with no mobile, no consent and no flags."""
    values: dict[str, Any] = {"gender": "F", "birth_year": 1985}
    values.update(fields)
    worker = Worker(
        key=f"test-worker-{uuid.uuid4().hex}",
        row_hash=uuid.uuid4().hex,
        name=name or f"职工{next(_numbers)}",
        unit_id=unit.id,
        **values,
    )
    session.add(worker)
    session.flush()
    return worker


# A fixed day for age arithmetic: `age between 18 and 60` is birth_year 1965..2007.
TODAY = date(2025, 6, 1)


def small_registry(session: Session) -> dict[str, Worker]:
    """Nine workers in six units with known answers to the five issue expressions (see the tests)."""
    textile = make_unit(session, name="城关纺织厂", kind="企业", township="城关镇")
    school = make_unit(session, name="城关镇第一小学", kind="学校", township="城关镇")
    west_textile = make_unit(
        session, name="西城纺织有限公司", kind="企业", township="西城镇", postcode="365101"
    )
    hospital = make_unit(session, name="县人民医院", kind="事业单位", township="城关镇")
    bureau = make_unit(session, name="县财政局", kind="机关", township="城关镇")
    guild = make_unit(
        session, name="个体商户联合会", kind="其他", township="城关镇", address=None, postcode=None
    )
    w = {
        "w1": make_worker(
            session,
            textile,
            name="林秀英",
            birth_year=1985,
            category="企业职工",
            hardship=True,
            consent_sms=True,
            mobile="13800000001",
        ),
        "w2": make_worker(
            session, bureau, name="陈美玲", birth_year=1965, category="公务员", mobile="13800000002"
        ),
        "w3": make_worker(
            session,
            school,
            name="黄丽华",
            birth_year=1964,
            category="教师",
            mobile="13800000003",
            consent_sms=True,
        ),
        "w4": make_worker(session, west_textile, name="张小红", birth_year=2007, category=None),
        "w5": make_worker(session, textile, name="王芳", birth_year=2008, category=None),
        "w6": make_worker(
            session,
            textile,
            name="李建国",
            gender="M",
            birth_year=1980,
            category="企业职工",
            hardship=True,
            consent_sms=True,
            mobile="13800000006",
        ),
        "w7": make_worker(session, guild, name="吴桂兰", birth_year=1990, category="白领"),
        "w8": make_worker(
            session, hospital, name="郑淑珍", birth_year=None, category="企业职工", hardship=True
        ),
        "w9": make_worker(
            session,
            west_textile,
            name="刘志强",
            gender="M",
            birth_year=1975,
            category="公务员",
            hardship=True,
            consent_sms=True,
            mobile="13800000009",
        ),
    }
    return w
