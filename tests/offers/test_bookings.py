"""Bookings of ad slots: checked like the kit's own artwork, covered by the approval digest, fixed once the
period's run starts, and printed in the pieces (read back from the PDF) beside each letter's QR code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from outreach.campaigns import service as campaigns
from outreach.errors import Conflict, InputError, StateError
from outreach.offers import service as offers
from outreach.offers.models import AdBooking
from outreach.offers.slots import slots_of
from outreach.render import KitOptions, load_kit_cached
from outreach.render.draw import mm
from outreach.render.marks import qr_ops
from outreach.runs.models import Batch
from outreach.settings import get_settings
from tests.offers.helpers import INSERT_PX, PERIOD, a_code, artwork, book, offer_world, started_run
from workers.local import run_locally

UNION_INSERT_PX = (1016, 661)


def test_the_kit_declares_its_slots() -> None:
    kit = load_kit_cached("qiaojiaren", KitOptions())
    found = {s.name: s for s in slots_of(kit)}
    assert list(found) == ["front", "back-left", "back-right", "insert-1", "insert-2", "insert-3", "insert-4"]
    assert found["insert-1"].side == "letter.advertising"
    assert (found["insert-1"].w, found["insert-1"].h) == (86, 56)
    assert found["back-left"].side == "envelope.back"


def test_artwork_that_would_not_print_is_refused_and_nothing_is_stored(session: Session) -> None:
    world = offer_world(session)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    cases = {
        "148 dpi": artwork((500, 326)),
        "CMYK": artwork(INSERT_PX, mode="RGB", colour=(200, 30, 60)),
        "变形": artwork((1100, 1100)),
        "不是可读取的图片": b"not an image at all",
    }
    for expected, image in cases.items():
        with pytest.raises(InputError) as caught:
            book(session, campaign, merchant_id=world.other_merchant_id, slot="insert-2", image=image)
        assert "insert-2" in str(caught.value) and expected in str(caught.value), str(caught.value)
    with pytest.raises(InputError, match="insert-9"):
        book(session, campaign, merchant_id=world.other_merchant_id, slot="insert-9")
    with pytest.raises(Conflict):
        book(session, campaign, merchant_id=world.other_merchant_id, slot="insert-1")
    assert session.scalar(select(func.count()).select_from(AdBooking)) == 1


def test_the_approval_digest_covers_the_periods_bookings(session: Session) -> None:
    world = offer_world(session)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is None
    approved = campaign.approved_hash
    # Another offer text in the same slot: the approval no longer holds.
    book(session, campaign, merchant_id=world.merchant_id, text="凭函到店护理七折", replace=True)
    assert campaigns.content_hash(session=session, campaign=campaign, period=PERIOD) != approved
    assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is not None
    campaigns.approve(session=session, campaign=campaign, period=PERIOD)
    assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is None
    # Other artwork, same text: also a change.
    book(session, campaign, merchant_id=world.merchant_id, replace=True, image=artwork(colour=(90, 0, 0, 0)))
    assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is not None
    campaigns.approve(session=session, campaign=campaign, period=PERIOD)
    offers.unbook(session=session, campaign=campaign, period=PERIOD, slot="insert-1")
    assert campaigns.approval_problem(session=session, campaign=campaign, period=PERIOD) is not None
    # A period without bookings digests as before bookings existed.
    hash_without = campaigns.content_hash(session=session, campaign=campaign, period=PERIOD)
    assert hash_without == campaigns.content_hash(session=session, campaign=campaign, period=None)


def test_bookings_are_fixed_once_the_run_starts(session: Session) -> None:
    world = offer_world(session)
    campaign = campaigns.get(session=session, campaign_id=world.campaign_id)
    started_run(session, world.campaign_id)
    with pytest.raises(StateError):
        book(session, campaign, merchant_id=world.other_merchant_id, slot="insert-2")
    with pytest.raises(StateError):
        offers.unbook(session=session, campaign=campaign, period=PERIOD, slot="insert-1")
    lines = {line.slot: line for line in offers.slot_lines(session=session, campaign=campaign, period=PERIOD)}
    assert lines["insert-1"].merchant is not None and lines["insert-1"].fee_fen == 50_000
    assert lines["insert-2"].merchant is None


def _images(pdf: Path) -> list[tuple[int, int]]:
    sizes = []
    reader = PdfReader(pdf)
    seen: set[int] = set()

    def walk(resources: object) -> None:
        xobjects = resources.get("/XObject", {}) if hasattr(resources, "get") else {}
        for ref in xobjects.values():
            if ref.idnum in seen:
                continue
            seen.add(ref.idnum)
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                sizes.append((int(obj["/Width"]), int(obj["/Height"])))
            elif obj.get("/Subtype") == "/Form":
                walk(obj.get("/Resources", {}))

    for page in reader.pages:
        walk(page.get("/Resources", {}))
    return sizes


def test_booked_artwork_and_the_qr_code_are_in_the_rendered_pieces(committed_engine: Engine) -> None:
    with Session(committed_engine) as session, session.begin():
        world = offer_world(session, women=4)
        run_id = started_run(session, world.campaign_id, mailed=False).id
    run_locally(run_id)
    root = get_settings().resolved_batch_dir
    with Session(committed_engine) as session:
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
        code = a_code(session, run_id, seq=1)
    letters = root / str(batch.files["letters.pdf"]["key"])
    sizes = _images(letters)
    # The booked artwork took insert-1's place; the three unbooked insert slots keep the union's own.
    assert sizes.count(INSERT_PX) == 1
    assert sizes.count(UNION_INSERT_PX) == 3
    reader = PdfReader(letters)
    # Piece 1's letter page and insert page both carry its code as a QR code (15 mm box in the kit).
    expected = qr_ops(code, 0, 0, mm(15))
    streams = [page.get_contents() for page in reader.pages[:3]]
    text = [s.get_data().decode("latin-1") if s is not None else "" for s in streams]
    assert expected in text[0] and expected in text[1] and expected not in text[2]


def test_the_printed_qr_code_scans_back_to_the_letters_code(committed_engine: Engine, tmp_path: Path) -> None:
    """What a merchant's scanner reads off the printed page is the letter's redemption code (and no name)."""
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    with Session(committed_engine) as session, session.begin():
        world = offer_world(session, women=2)
        run_id = started_run(session, world.campaign_id, mailed=False).id
    run_locally(run_id)
    with Session(committed_engine) as session:
        batch = session.scalars(select(Batch).where(Batch.run_id == run_id)).one()
        code = a_code(session, run_id, seq=1)
    letters = get_settings().resolved_batch_dir / str(batch.files["letters.pdf"]["key"])
    # The letter page and the insert page of piece 1, at a scanner's resolution.
    subprocess.run(
        ["pdftoppm", "-png", "-r", "200", "-f", "1", "-l", "2", str(letters), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    for png in pages:
        found = [
            r.text
            for r in zxingcpp.read_barcodes(Image.open(png))
            if r.format == zxingcpp.BarcodeFormat.QRCode
        ]
        assert found == [code], (png.name, found)
