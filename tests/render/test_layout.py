"""Chinese line breaking (禁则) read back from rendered pages, and the kits' quotation marks."""

from __future__ import annotations

import shutil
from pathlib import Path

import pypdf
import pytest

from outreach.render import Kit, RenderResult, kits_dir, load_kit, render_letters, sample_recipients
from outreach.render.layout import NO_LINE_END, NO_LINE_START, wrap

# Pairs that a careless break splits: closing punctuation after closing punctuation, opening after opening.
CLOSERS = ("。”", "！”", "？）", "」。", "……", "）、")
OPENERS = ("（“", "“「", "《“")


def _violations(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln and (ln[0] in NO_LINE_START or ln[-1] in NO_LINE_END)]


def _lines(pdf: Path) -> list[str]:
    out: list[str] = []
    for page in pypdf.PdfReader(pdf).pages:
        out += [ln.strip() for ln in page.extract_text().splitlines() if ln.strip()]
    return out


def test_wrap_moves_a_character_down_with_two_closing_marks(qiaojiaren: Kit) -> None:
    chain = qiaojiaren.fonts["kai"]
    size = 10.0
    width = chain.width("字" * 10, size)
    for pair in (*CLOSERS, *OPENERS):
        for before in range(7, 12):
            text = "字" * before + pair + "字" * 8
            lines = wrap(text, chain, size, width)
            assert "".join(lines) == text
            assert not _violations(lines), (pair, before, lines)
            assert all(chain.width(ln, size) <= width + 0.01 for ln in lines)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RenderResult]:
    """The notice kit with a body whose marks land on line ends at every offset."""
    out = tmp_path_factory.mktemp("kinsoku")
    kit_dir = out / "notice"
    shutil.copytree(kits_dir() / "notice", kit_dir)
    paragraphs = [
        "字" * n + pair + "字" * 3
        for n, pair in zip(range(34, 46), (*CLOSERS, *OPENERS, *CLOSERS), strict=False)
    ]
    (kit_dir / "notice_body.j2").write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    kit = load_kit(kit_dir)
    letters = out / "l.pdf"
    result = render_letters(kit, sample_recipients(1), envelopes=out / "e.pdf", letters=letters)
    return letters, result


def test_rendered_lines_keep_the_line_breaking_rules(crafted: tuple[Path, RenderResult]) -> None:
    letters, result = crafted
    assert not result.failed
    lines = _lines(letters)
    body = [ln for ln in lines if ln.startswith("字") or ln.endswith("字") or "字字" in ln]
    assert len(body) >= 20  # the crafted paragraphs wrapped, so breaks fell next to the marks
    assert not _violations(lines), _violations(lines)


@pytest.mark.parametrize("kit_name", ["qiaojiaren", "notice"])
def test_shipped_kits_keep_the_rules_and_use_chinese_quotes(kit_name: str, tmp_path: Path) -> None:
    kit = load_kit(kit_name)
    env, let = tmp_path / "e.pdf", tmp_path / "l.pdf"
    render_letters(kit, sample_recipients(3), envelopes=env, letters=let)
    lines = _lines(env) + _lines(let)
    assert not _violations(lines), _violations(lines)
    text = "\n".join(lines)
    assert '"' not in text and "'" not in text
    assert "“半边天”" in text or "“金秋助学”" in text
