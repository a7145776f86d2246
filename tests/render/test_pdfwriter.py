"""The PDF writer: the only module touching ReportLab's internals, and a text layer that copies right."""

from __future__ import annotations

import re
from pathlib import Path

import pikepdf
import pypdf
import pytest

from outreach.render import Kit, Recipient, render_letters
from outreach.render.pdfwriter import to_unicode_cmap

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "outreach" / "render" / "pdfwriter.py"
# What reaches past ReportLab's public API; only pdfwriter.py may say it.
INTERNALS = re.compile(
    r"\._code\b|\._doc\b|xobjDict|splitString|getSubsetInternalName|\.decompose\(|\.decomposed\b"
    r"|\bpdfdoc\b|PDFObject|PDFResourceDictionary|makeToUnicodeCMap|\.face\b|\brl_config\b"
    r"|\bttfonts\b|\bcanvas\.\w+\s*=[^=]|setattr\(\s*canvas"
)
# 𠮷 (U+20BB7, beyond the BMP) is in LXGW WenKai, which every kit's chain falls back to.
RARE = "\U00020bb7"


def test_only_pdfwriter_touches_reportlab_internals() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "outreach").rglob("*.py"))
        if path != WRITER
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if INTERNALS.search(line)
    ]
    assert not offenders, "ReportLab internals outside outreach/render/pdfwriter.py:\n" + "\n".join(offenders)
    assert INTERNALS.search(WRITER.read_text(encoding="utf-8"))  # the pattern still finds what it guards


def test_cmap_writes_surrogate_pairs_beyond_the_bmp() -> None:
    cmap = to_unicode_cmap("AAAAAA+Font", [0, 0x5B57, 0x20BB7])
    assert "<01> <5B57>" in cmap
    assert "<02> <D842DFB7>" in cmap
    assert "20BB7" not in cmap


def _piece(name: str) -> Recipient:
    return Recipient(
        number="U-000001",
        seq=1,
        name=name,
        gender="F",
        unit_name="尤溪县医院",
        address="尤溪县城关镇水南路1号",
        postcode="365100",
    )


def test_a_name_beyond_the_bmp_copies_out_of_the_pdf(qiaojiaren: Kit, tmp_path: Path) -> None:
    if all(chain.font_for(RARE) is None for chain in qiaojiaren.fonts.values()):
        pytest.skip("no installed font draws 𠮷 (install fonts-lxgw-wenkai)")
    env, let = tmp_path / "e.pdf", tmp_path / "l.pdf"
    result = render_letters(qiaojiaren, [_piece(f"{RARE}田花子")], envelopes=env, letters=let)
    assert not result.failed
    envelope = pypdf.PdfReader(env).pages[0].extract_text()
    letter = pypdf.PdfReader(let).pages[0].extract_text()
    assert f"{RARE}田花子 女士 收" in envelope
    assert f"尊敬的{RARE}田花子女士" in letter
    with pikepdf.open(let) as pdf:
        cmaps = [
            obj.ToUnicode.read_bytes()
            for obj in pdf.objects
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/Font" and "/ToUnicode" in obj
        ]
    assert any(b"<D842DFB7>" in c for c in cmaps)
    assert not any(re.search(rb"<[0-9A-F]{5}>", c) for c in cmaps)  # no truncated 5-digit code
