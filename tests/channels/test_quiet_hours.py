"""Quiet hours: the sending window by kind and campaign, and a live SMS run on a frozen clock that starts at
19:58, submits until 20:00, pauses (the supervisor does not count the wait as a stall) and resumes at 08:00
the next morning by itself; the per-number daily cap holds a second message to a number until tomorrow."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from pydantic import SecretStr
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from outreach import channels
from outreach.channels.gateways.aliyun import AliyunGateway
from outreach.channels.gateways.base import QueryResult, SendResult, Sms
from outreach.channels.quiet_hours import parse_hours, sms_kind, window_for
from outreach.channels.sms_live import SmsLiveChannel
from outreach.cli import app
from outreach.errors import InputError
from outreach.settings import get_settings
from tests.fakes.sms_gateway import FakeSmsGateway

BEIJING = ZoneInfo("Asia/Shanghai")


def bj(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 1, day, hour, minute, tzinfo=BEIJING)


def test_marketing_and_notice_windows_and_a_campaigns_own_hours() -> None:
    marketing = window_for("marketing")
    assert marketing.describe() == "08:00-20:00 Asia/Shanghai"
    assert marketing.is_open(bj(4, 8)) and marketing.is_open(bj(4, 19, 59))
    assert not marketing.is_open(bj(4, 20)) and not marketing.is_open(bj(4, 7, 59))
    assert window_for("通知").is_open(bj(4, 20, 30)) and not window_for("notice").is_open(bj(4, 21))
    own = window_for("marketing", "09:30-11:00")
    assert own.is_open(bj(4, 10)) and not own.is_open(bj(4, 12))
    # Naive times are UTC: 12:30 UTC is 20:30 in Beijing.
    assert not marketing.is_open(datetime(2027, 1, 4, 12, 30))
    assert marketing.closes_at(bj(4, 19)) == bj(4, 20).astimezone(UTC)
    assert marketing.next_open(bj(4, 20, 1)) == bj(5, 8).astimezone(UTC)
    assert marketing.next_open(bj(4, 3)) == bj(4, 8).astimezone(UTC)
    assert marketing.next_open(bj(4, 9)) == bj(4, 9)
    assert window_for("notice", "00:00-24:00").is_open(bj(4, 23, 59))


@pytest.mark.parametrize(
    ("text", "fault"),
    [("8-20", "08:00-20:00"), ("20:00-08:00", "同一天"), ("08:00", "08:00-20:00"), ("25:00-26:00", "08:00")],
)
def test_bad_hours_say_where_and_why(text: str, fault: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_hours(text, zone="Asia/Shanghai", where="活动 助学短信")
    assert "活动 助学短信" in str(caught.value) and fault in str(caught.value)


def test_kinds_take_chinese_words_and_refuse_others() -> None:
    assert sms_kind("推广") == "marketing" and sms_kind(" Notice ") == "notice"
    with pytest.raises(InputError, match="推广"):
        sms_kind("广告")


class Ticking:
    """The real Aliyun adapter over the fake gateway, each call taking 30 s of the frozen clock."""

    name = "aliyun"
    max_batch = 5

    def __init__(self, inner: AliyunGateway, clock: time_machine.Traveller) -> None:
        self.inner = inner
        self.clock = clock

    def send_batch(self, messages: Sequence[Sms], *, template: str, batch_ref: str) -> list[SendResult]:
        out = self.inner.send_batch(messages, template=template, batch_ref=batch_ref)
        self.clock.shift(timedelta(seconds=30))
        return out

    def query_sent(self, messages: Sequence[Sms], *, batch_ref: str, since: datetime) -> QueryResult:
        return self.inner.query_sent(messages, batch_ref=batch_ref, since=since)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway(hang=2.5) as gateway:
        yield gateway


def _submitted_at(engine: Engine, run_id: int) -> Mapping[str, datetime | None]:
    from outreach.runs.models import Piece

    with Session(engine) as session:
        return {
            p.mobile or "": p.submitted_at
            for p in session.scalars(select(Piece).where(Piece.run_id == run_id, Piece.state == "submitted"))
        }


def test_a_run_started_at_1958_submits_until_2000_pauses_and_resumes_at_0800(
    committed_engine: Engine, fake: FakeSmsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from outreach.campaigns import service as campaigns
    from outreach.runs import executor, supervisor
    from outreach.runs import service as runs
    from outreach.runs.models import Run, RunEvent
    from tests.runs.world import committed_world
    from workers.local import run_locally

    world = committed_world(
        committed_engine, name="夜间短信", women=40, kit="hardship_sms", channel="sms", batch_size=20
    )
    aliyun = AliyunGateway(
        access_key_id=fake.access_key_id,
        access_key_secret=SecretStr("x"),
        sign_name="尤溪县总工会",
        endpoint=fake.endpoint,
        timeout=2,
    )
    # The supervisor hands a resumed run to a local process; here it runs in this (time-travelling) one.
    monkeypatch.setattr(executor, "hand_off", lambda run_id, **kw: executor.run_local(run_id, claimed=True))
    with time_machine.travel(bj(4, 19, 58), tick=False) as clock:
        live = SmsLiveChannel(Ticking(aliyun, clock), template="SMS_1", sleep=lambda s: None)  # type: ignore[arg-type]
        monkeypatch.setitem(channels._REGISTRY, "sms", live)
        with Session(committed_engine) as session, session.begin():
            campaign = campaigns.get_by_name(session=session, name=world.campaign)
            run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
        run_locally(run_id)
        # 19:58, 19:58:30, 19:59, 19:59:30: four calls of five; at 20:00 the window is shut.
        assert sum(fake.submitted().values()) == 20
        evening = _submitted_at(committed_engine, run_id)
        assert len(evening) == 20 and all(t is not None and t < bj(4, 20) for t in evening.values())
        with Session(committed_engine) as session:
            run = session.get(Run, run_id)
            assert run is not None and run.state == "rendering"
            assert run.paused_until == bj(5, 8).astimezone(UTC)
        shown = CliRunner().invoke(app, ["run", "status", str(run_id), "--json"])
        info = json.loads(shown.output)
        assert info["state"] == "rendering" and info["paused_until"] == bj(5, 8).astimezone(UTC).isoformat()
        assert (info["submitted"], info["awaiting_receipts"], info["pending"]) == (20, 20, 20)
        # Through the night the supervisor sees a paused run, never a stalled one (however often it looks).
        for hour in (21, 23, 2, 5, 7):
            clock.move_to(bj(4 if hour > 8 else 5, hour))
            for _ in range(get_settings().stall_after + 1):
                assert supervisor.check_run(run_id) == supervisor.PAUSED
        assert sum(fake.submitted().values()) == 20
        clock.move_to(bj(5, 8))
        assert supervisor.check_run(run_id) == supervisor.RESUMED
        with Session(committed_engine) as session:
            run = session.get(Run, run_id)
            assert run is not None and run.state == "done" and run.paused_until is None
            kinds = [e.kind for e in session.scalars(select(RunEvent).where(RunEvent.run_id == run_id))]
            assert "paused" in kinds and "resumed" in kinds and "stalled" not in kinds
    assert fake.submitted() == {f"139{i:08d}": 1 for i in range(40)}
    morning = {m: t for m, t in _submitted_at(committed_engine, run_id).items() if m not in evening}
    assert len(morning) == 20 and all(t is not None and bj(5, 8) <= t < bj(5, 8, 3) for t in morning.values())


def test_the_daily_cap_holds_a_second_message_to_a_number_until_the_next_window(
    committed_engine: Engine,
) -> None:
    from outreach.campaigns.models import Campaign
    from outreach.runs import service as runs
    from outreach.runs import sms
    from outreach.runs.models import Piece
    from tests.runs.world import committed_world

    world = committed_world(
        committed_engine, name="限次短信", women=6, kit="hardship_sms", channel="sms", batch_size=6
    )
    now = bj(4, 10).astimezone(UTC)
    with Session(committed_engine) as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        run = runs.start(session=session, campaign=campaign, period="2027-Q1")
        pieces = runs.batch_pieces(session=session, run=run, batch_seq=1)
        # Piece 1 went to its number this morning; piece 2 shares that number; piece 3's number had one
        # yesterday (which does not count today).
        session.execute(
            update(Piece).where(Piece.id == pieces[0].id).values(state="submitted", submitted_at=now)
        )
        session.execute(update(Piece).where(Piece.id == pieces[1].id).values(mobile=pieces[0].mobile))
        session.execute(
            update(Piece)
            .where(Piece.id == pieces[2].id)
            .values(state="submitted", submitted_at=now - timedelta(days=1))
        )
        session.execute(update(Piece).where(Piece.id == pieces[3].id).values(mobile=pieces[2].mobile))
        session.expire_all()
        pieces = runs.batch_pieces(session=session, run=run, batch_seq=1)
        gate = sms.gate(session=session, campaign=campaign, pieces=pieces, now=now)
        assert [p.seq for p in gate.send] == [pieces[3].seq, pieces[4].seq, pieces[5].seq]
        assert gate.until == bj(4, 20).astimezone(UTC) and gate.resume_at == bj(5, 8).astimezone(UTC)
        campaign.sms_daily_cap = 2
        session.flush()
        assert len(sms.gate(session=session, campaign=campaign, pieces=pieces, now=now).send) == 4
        # Outside the window nothing goes, and the gate says when it opens.
        closed = sms.gate(session=session, campaign=campaign, pieces=pieces, now=bj(4, 21).astimezone(UTC))
        assert closed.send == [] and closed.resume_at == bj(5, 8).astimezone(UTC)


def test_a_planner_sets_a_campaigns_kind_hours_and_daily_cap(committed_engine: Engine) -> None:
    from outreach.campaigns.models import Campaign
    from tests.runs.world import committed_world

    world = committed_world(committed_engine, name="培训通知", women=2, kit="hardship_sms", channel="sms")
    runner = CliRunner()
    shown = runner.invoke(app, ["sms", "hours", "培训通知"])
    assert shown.exit_code == 0, shown.output
    assert "推广" in shown.output and "08:00-20:00" in shown.output and "默认" in shown.output
    changed = runner.invoke(
        app, ["sms", "hours", "培训通知", "--kind", "通知", "--hours", "09:00-18:30", "--cap", "2"]
    )
    assert changed.exit_code == 0, changed.output
    assert "通知" in changed.output and "09:00-18:30" in changed.output
    with Session(committed_engine) as session:
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        assert (campaign.sms_kind, campaign.sms_hours, campaign.sms_daily_cap) == ("notice", "09:00-18:30", 2)
    bad = runner.invoke(app, ["sms", "hours", "培训通知", "--hours", "18:00-09:00"])
    # The CLI's entry point prints a refusal as one line; here it comes back as the error.
    assert isinstance(bad.exception, InputError)
    assert "培训通知" in str(bad.exception) and "同一天" in str(bad.exception)
    too_many = runner.invoke(app, ["sms", "hours", "培训通知", "--cap", "51"])
    assert isinstance(too_many.exception, InputError) and "1 到 50" in str(too_many.exception)
    back = runner.invoke(app, ["sms", "hours", "培训通知", "--hours", ""])
    assert back.exit_code == 0 and "08:00-21:00" in back.output  # the notice kind's default
    committed_world(committed_engine, name="俏佳人信函", women=2)
    letters = runner.invoke(app, ["sms", "hours", "俏佳人信函", "--hours", "09:00-18:00"])
    assert isinstance(letters.exception, InputError) and "短信活动" in str(letters.exception)
