"""Print properties of the produced PDFs, read back with pikepdf and pypdf."""

from __future__ import annotations

import re
from pathlib import Path

import pikepdf
import pypdf
import pytest

from outreach.render import Kit, Recipient, RenderResult, render_letters, sample_recipients
from outreach.render.draw import MM

BLEED_PT = 3 * MM


def _boxes(page: pikepdf.Page) -> tuple[list[float], list[float], list[float]]:
    return tuple([float(v) for v in page.obj[key]] for key in ("/MediaBox", "/TrimBox", "/BleedBox"))  # type: ignore[return-value]


@pytest.mark.parametrize(("which", "trim_mm"), [(0, (220, 110)), (1, (210, 297))])
def test_boxes_are_trim_plus_bleed(
    rendered: tuple[Path, Path, RenderResult], which: int, trim_mm: tuple[int, int]
) -> None:
    with pikepdf.open(rendered[0] if which == 0 else rendered[1]) as pdf:
        for page in pdf.pages:
            media, trim, bleed = _boxes(page)
            assert media[2] == pytest.approx(trim_mm[0] * MM + 2 * BLEED_PT, abs=0.01)
            assert media[3] == pytest.approx(trim_mm[1] * MM + 2 * BLEED_PT, abs=0.01)
            assert trim == pytest.approx(
                [BLEED_PT, BLEED_PT, media[2] - BLEED_PT, media[3] - BLEED_PT], abs=0.01
            )
            assert bleed == pytest.approx(media, abs=0.01)


def test_page_counts(rendered: tuple[Path, Path, RenderResult], qiaojiaren: Kit) -> None:
    env, let, result = rendered
    assert len(result.rendered) == 5 and not result.failed
    assert len(pypdf.PdfReader(env).pages) == 5 * 2
    assert len(pypdf.PdfReader(let).pages) == 5 * qiaojiaren.letter_pages == 10


def _fonts(pdf: pikepdf.Pdf) -> list[pikepdf.Dictionary]:
    found: dict[tuple[int, int], pikepdf.Dictionary] = {}
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/Font":
            found[obj.objgen] = obj
    return list(found.values())


@pytest.mark.parametrize("which", [0, 1])
def test_every_font_is_an_embedded_subset(rendered: tuple[Path, Path, RenderResult], which: int) -> None:
    with pikepdf.open(rendered[0] if which == 0 else rendered[1]) as pdf:
        fonts = _fonts(pdf)
        assert fonts
        for font in fonts:
            assert font.Subtype == "/TrueType", font.BaseFont
            assert re.fullmatch(r"/[A-Z]{6}\+.+", str(font.BaseFont)), font.BaseFont
            assert "/FontFile2" in font.FontDescriptor


def _content_streams(pdf: pikepdf.Pdf) -> list[bytes]:
    out = [page.obj.Contents.read_bytes() for page in pdf.pages]
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Form":
            out.append(obj.read_bytes())
    return out


@pytest.mark.parametrize("which", [0, 1])
def test_colours_are_cmyk_only(rendered: tuple[Path, Path, RenderResult], which: int) -> None:
    with pikepdf.open(rendered[0] if which == 0 else rendered[1]) as pdf:
        streams = _content_streams(pdf)
        assert any(b" k\n" in s or b" k " in s for s in streams)
        for data in streams:
            for op in pikepdf.parse_content_stream(pikepdf.Stream(pdf, data)):
                name = str(op.operator)
                assert name not in ("rg", "RG", "g", "G", "sc", "scn", "SC", "SCN", "cs", "CS"), name
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Stream) and obj.get("/Subtype") == "/Image":
                assert obj.ColorSpace == "/DeviceCMYK"


def test_images_at_least_300_dpi(rendered: tuple[Path, Path, RenderResult], qiaojiaren: Kit) -> None:
    from outreach.render.preflight import image_dpi

    images = [
        el
        for page in (qiaojiaren.front, qiaojiaren.back, *qiaojiaren.pages)
        for el in page
        if el.kind == "image"
    ]
    assert len(images) >= 8
    assert all(image_dpi(el)[0] >= 299.5 for el in images)


def test_static_parts_are_shared_forms(rendered: tuple[Path, Path, RenderResult]) -> None:
    with pikepdf.open(rendered[1]) as pdf:
        forms = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Form"]
        assert len(forms) == 2  # one per letter page design, whatever the number of pieces
        images = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert len(images) == 5  # letterhead + four ads, stored once


def test_piece_numbers_in_same_order_in_both_files(rendered: tuple[Path, Path, RenderResult]) -> None:
    env, let, result = rendered
    expected = [o.number for o in result.rendered]

    def numbers(path: Path) -> list[str]:
        found = []
        for page in pypdf.PdfReader(path).pages:
            hits = re.findall(r"P000000-\d{6}", page.extract_text())
            assert hits, "every page carries its piece number"
            found.append(hits[0])
        return found

    env_numbers = numbers(env)
    let_numbers = numbers(let)
    assert env_numbers[::2] == env_numbers[1::2] == expected
    assert let_numbers[::2] == let_numbers[1::2] == expected


def test_personalised_text(rendered: tuple[Path, Path, RenderResult]) -> None:
    text = pypdf.PdfReader(rendered[1]).pages[0].extract_text()
    assert "王秀英女士" in text and "尤溪县医院" in text and "女职工劳动保护特别规定" in text


def test_same_input_same_bytes(
    rendered: tuple[Path, Path, RenderResult], qiaojiaren: Kit, tmp_path: Path
) -> None:
    env, let = tmp_path / "e.pdf", tmp_path / "l.pdf"
    render_letters(qiaojiaren, sample_recipients(5), envelopes=env, letters=let)
    assert env.read_bytes() == rendered[0].read_bytes()
    assert let.read_bytes() == rendered[1].read_bytes()


def test_bad_piece_is_skipped_and_reported(qiaojiaren: Kit, tmp_path: Path) -> None:
    good = sample_recipients(2)
    bad = Recipient(
        number="X-1", seq=9, name="张三", gender="F", unit_name="某厂", address=None, postcode=None
    )
    result = render_letters(
        qiaojiaren, [good[0], bad, good[1]], envelopes=tmp_path / "e.pdf", letters=tmp_path / "l.pdf"
    )
    assert [o.number for o in result.rendered] == [good[0].number, good[1].number]
    assert result.failed[0].number == "X-1" and "邮政编码" in (result.failed[0].error or "")
    assert len(pypdf.PdfReader(tmp_path / "e.pdf").pages) == 4
