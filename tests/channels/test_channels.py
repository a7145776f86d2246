"""The channel seam: one word per channel, the letter and SMS-file channels on their own, and a live-style
channel (charged when submitted, refunded when its receipt says failed) carried through a real run."""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from outreach import channels
from outreach.campaigns.models import Campaign
from outreach.channels import (
    BatchFolder,
    BatchOutput,
    ChannelName,
    ManifestRow,
    PieceResult,
    Receipt,
    channel_word,
    get_channel,
)
from outreach.channels.sms_files import SmsFilesChannel
from outreach.errors import InputError, NotFound
from outreach.ledger import service as ledger
from outreach.ledger.models import RateCard
from outreach.render import Kit, Recipient, load_kit, sample_recipients
from outreach.runs import service as runs
from outreach.runs.models import Piece
from outreach.storage import LocalStorage
from tests.runs.world import committed_world
from workers.local import run_locally

ROOT = Path(__file__).resolve().parents[2]


def test_one_word_per_channel_and_the_old_word_is_taken() -> None:
    assert channel_word("letter") == "letter"
    assert channel_word(" SMS ") == "sms"
    assert channel_word("mail") == "letter"
    with pytest.raises(InputError, match="email"):
        channel_word("email")
    assert get_channel("mail") is get_channel("letter")


def test_orchestration_never_branches_on_the_channel_name() -> None:
    branch = re.compile(r"channel\s*[!=]=\s*['\"]|['\"](letter|sms|mail)['\"]\s*[!=]=\s*\S*channel")
    for path in ("outreach/runs/service.py", "outreach/runs/batchfiles.py", "outreach/runs/ticket.py"):
        text = (ROOT / path).read_text(encoding="utf-8")
        assert not branch.search(text), f"{path} branches on a channel name"


def test_the_letter_channel_renders_files_and_a_result_per_piece(tmp_path: Path) -> None:
    kit = load_kit("qiaojiaren")
    recipients = sample_recipients(4)
    channel = get_channel("letter")
    folder = BatchFolder(LocalStorage(tmp_path / "store"), "run-000001/batch-0001")
    work = tmp_path / "work"
    work.mkdir()
    output = channel.deliver(kit, recipients, context={"campaign": "俏佳人"}, folder=folder, workdir=work)
    assert [r.number for r in output.results] == [r.number for r in recipients]
    assert all(r.state == "rendered" and r.pages and r.units == 1 for r in output.results)
    assert set(output.files) == set(channel.delivery_files) == {"envelopes.pdf", "letters.pdf"}
    for name, facts in output.files.items():
        assert (tmp_path / "store" / str(facts["key"])).read_bytes().startswith(b"%PDF"), name
    rows = [
        ManifestRow(i, r.number, r.name, r.unit_name, r.address, r.postcode, 1, None)
        for i, r in enumerate(recipients, 1)
    ]
    manifest = channel.manifest(rows)
    assert manifest is not None and manifest[1][0][1] == recipients[0].number
    assert str(channel.ticket_lines(kit, pieces=4)["envelope"]).startswith(kit.envelope_size)
    assert channel.charge_on == "rendered" and not channel.keeps_mobile


def test_the_sms_file_channel_writes_the_gateway_file_and_fails_a_piece_without_a_mobile(
    tmp_path: Path,
) -> None:
    kit = load_kit("hardship_sms")
    recipients = sample_recipients(3)
    recipients[1] = dataclasses.replace(recipients[1], mobile=None)
    channel = get_channel("sms")
    assert isinstance(channel, SmsFilesChannel)
    work = tmp_path / "work"
    work.mkdir()
    folder = BatchFolder(LocalStorage(tmp_path / "store"), "run-000002/batch-0001")
    output = channel.deliver(kit, recipients, context={}, folder=folder, workdir=work)
    states = [r.state for r in output.results]
    assert states == ["rendered", "failed", "rendered"]
    assert output.results[0].parts and output.results[0].units == output.results[0].parts
    assert output.results[1].reason
    with (tmp_path / "store" / str(output.files["sms.csv"]["key"])).open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["piece"] for r in rows] == [recipients[0].number, recipients[2].number]
    assert channel.manifest([]) is None and channel.keeps_mobile


class LiveLike:
    """A channel that hands pieces to a gateway: charged when submitted; one number the gateway refuses."""

    name: ChannelName = "sms"
    charge_on: str = "submitted"
    keeps_mobile: bool = True
    delivery_files: tuple[str, ...] = ("submitted.csv",)

    def __init__(self) -> None:
        self.files = SmsFilesChannel()

    def batch_size(self, requested: int) -> int:
        return requested

    def max_units(self, kit: Kit) -> int:
        return self.files.max_units(kit)

    def deliver(
        self,
        kit: Kit,
        recipients: Sequence[Recipient],
        *,
        context: Mapping[str, object],
        folder: BatchFolder,
        workdir: Path,
    ) -> BatchOutput:
        composed = self.files.deliver(kit, recipients, context=context, folder=folder, workdir=workdir)
        results = []
        for r in composed.results:
            if r.number.endswith("0000002"):  # the gateway refuses this one at once
                results.append(
                    PieceResult(r.number, "failed", reason="号码停机", error_code="isv.MOBILE_NOT_ON")
                )
            else:
                results.append(PieceResult(r.number, "submitted", parts=r.parts, message_id=f"gw-{r.number}"))
        path = workdir / "submitted.csv"
        path.write_text(
            "".join(f"{r.number},{r.state},{r.message_id or ''}\n" for r in results), encoding="utf-8"
        )
        return BatchOutput(results=results, files={"submitted.csv": folder.put(path)})

    def manifest(self, rows: Sequence[ManifestRow]) -> None:
        return None

    def ticket_lines(self, kit: Kit, *, pieces: int) -> dict[str, str | int]:
        return self.files.ticket_lines(kit, pieces=pieces)


@pytest.fixture
def live_sms(monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveLike]:
    channel = LiveLike()
    monkeypatch.setitem(channels._REGISTRY, "sms", channel)
    yield channel


def test_a_live_channel_is_charged_when_submitted_and_refunded_when_it_fails(
    committed_engine: Engine, live_sms: LiveLike
) -> None:
    world = committed_world(committed_engine, name="助学短信", women=4, kit="hardship_sms", channel="sms")
    with Session(committed_engine) as session, session.begin():
        # This offer refunds undeliverable pieces.
        session.execute(update(RateCard).values(refund_undeliverable=True))
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    with Session(committed_engine) as session, session.begin():
        pieces = session.scalars(select(Piece).where(Piece.run_id == run_id).order_by(Piece.seq)).all()
        assert [p.state for p in pieces] == ["submitted", "failed", "submitted", "submitted"]
        assert pieces[1].error_code == "isv.MOBILE_NOT_ON" and pieces[1].message_id is None
        assert pieces[0].message_id == f"gw-{pieces[0].number}"
        part_fen = 5
        submitted_parts = sum(p.parts or 0 for p in pieces if p.state == "submitted")
        balance = ledger.balance(session=session, run_id=run_id)
        assert balance.charged_fen == submitted_parts * part_fen  # the refused piece costs nothing
        assert runs.get(session=session, run_id=run_id).state == "done"
        settled = runs.record_receipts(
            session=session,
            run_id=run_id,
            channel=live_sms,
            receipts=[
                Receipt(f"gw-{pieces[0].number}", "delivered"),
                Receipt(f"gw-{pieces[2].number}", "failed", error_code="UNDELIV", reason="用户关机"),
            ],
        )
        assert (settled.delivered, settled.failed, settled.refunded) == (1, 1, 1)
        assert pieces[0].state == "delivered"
        assert (pieces[2].state, pieces[2].error_code, pieces[2].error) == ("failed", "UNDELIV", "用户关机")
        refunded = ledger.balance(session=session, run_id=run_id).refunded_fen
        assert refunded == (pieces[2].parts or 0) * part_fen
        # A gateway that repeats itself changes nothing.
        again = runs.record_receipts(
            session=session,
            run_id=run_id,
            channel=live_sms,
            receipts=[Receipt(f"gw-{pieces[2].number}", "failed", error_code="UNDELIV")],
        )
        assert (again.failed, again.refunded) == (0, 0)
        assert ledger.balance(session=session, run_id=run_id).refunded_fen == refunded
        with pytest.raises(NotFound):
            runs.record_receipts(
                session=session,
                run_id=run_id,
                channel=live_sms,
                receipts=[Receipt("gw-unknown", "delivered")],
            )


def test_a_piece_keeps_its_recorded_state_when_its_batch_is_delivered_again(
    committed_engine: Engine, live_sms: LiveLike
) -> None:
    world = committed_world(committed_engine, name="助学短信", women=3, kit="hardship_sms", channel="sms")
    with Session(committed_engine) as session, session.begin():
        campaign = session.get(Campaign, world.campaign_id)
        assert campaign is not None
        run_id = runs.start(session=session, campaign=campaign, period="2027-Q1").id
    run_locally(run_id)
    with Session(committed_engine) as session, session.begin():
        first = session.scalars(select(Piece).where(Piece.run_id == run_id, Piece.seq == 1)).one()
        runs.record_receipts(
            session=session,
            run_id=run_id,
            channel=live_sms,
            receipts=[Receipt(f"gw-{first.number}", "delivered")],
        )
        charged = ledger.balance(session=session, run_id=run_id).charged_fen
        pieces = session.scalars(select(Piece).where(Piece.run_id == run_id).order_by(Piece.seq)).all()
        again = [
            PieceResult(p.number, "submitted", parts=p.parts, message_id=f"gw2-{p.number}") for p in pieces
        ]
        settled = runs.record_results(
            session=session,
            run=runs.get(session=session, run_id=run_id),
            channel=live_sms,
            pieces=pieces,
            results=again,
        )
        assert (settled.delivered, settled.charged) == (0, 0)
        session.refresh(first)
        assert (first.state, first.message_id) == ("delivered", f"gw-{first.number}")
        assert ledger.balance(session=session, run_id=run_id).charged_fen == charged


def test_sms_goes_live_only_when_a_gateway_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from outreach.channels.sms_live import SmsLiveChannel
    from outreach.settings import get_settings

    assert isinstance(get_channel("sms"), SmsFilesChannel)
    monkeypatch.setenv("OUTREACH_SMS_GATEWAY", "aliyun")
    get_settings.cache_clear()
    try:
        live = get_channel("sms")
        assert isinstance(live, SmsLiveChannel) and live.charge_on == "submitted"
    finally:
        monkeypatch.delenv("OUTREACH_SMS_GATEWAY")
        get_settings.cache_clear()
    assert isinstance(get_channel("sms"), SmsFilesChannel)
