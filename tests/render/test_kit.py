"""Kit loading: manifest checks, preflight zones, template errors naming kit/file/line, sandbox, glyphs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from outreach.errors import KitError
from outreach.render import (
    Kit,
    Recipient,
    check_glyphs,
    kits_dir,
    load_kit,
    render_letters,
    sample_recipients,
)
from outreach.render.fonts import resolve_chain


def _copy(tmp_path: Path, kit: str = "notice") -> Path:
    dest = tmp_path / kit
    shutil.copytree(kits_dir() / kit, dest)
    return dest


def _append(kit: Path, text: str) -> None:
    manifest = kit / "kit.toml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_shipped_kits_load() -> None:
    assert load_kit("qiaojiaren").letter_pages == 2
    assert load_kit("notice").channel == "letter"
    assert load_kit("hardship_sms").channel == "sms"


def test_digest_is_stable_and_changes_with_content(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    first = load_kit(kit).digest
    assert load_kit(kit).digest == first
    (kit / "notice_body.j2").write_text("新的内容。\n", encoding="utf-8")
    assert load_kit(kit).digest != first


# The manifest's own front elements start at line 39 or so; appended blocks are named by their line.
MRZ_RECT = '\n[[envelope.front]]\nkind = "rect"\nfill = "red"\nx = 60\ny = 5\nw = 40\nh = 10\n'
STRIP_RECT = '\n[[envelope.front]]\nkind = "rect"\nfill = "red"\nx = 100\ny = 95\nw = 20\nh = 10\n'


def test_preflight_refuses_the_machine_reading_zone(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    _append(kit, MRZ_RECT)
    lines = (kit / "kit.toml").read_text(encoding="utf-8").splitlines()
    header_line = len(lines) - 7 + 1
    with pytest.raises(KitError) as err:
        load_kit(kit)
    msg = str(err.value)
    assert "机器识读区" in msg and f"kit.toml 第 {header_line} 行" in msg and "套件 notice" in msg


def test_preflight_refuses_the_barcode_strip(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    _append(kit, STRIP_RECT)
    with pytest.raises(KitError, match="邮政条码区"):
        load_kit(kit)


def test_preflight_allows_the_same_rect_elsewhere(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    _append(kit, STRIP_RECT.replace("x = 100", "x = 170").replace("y = 95", "y = 75"))
    load_kit(kit)


def test_preflight_refuses_low_resolution_artwork(tmp_path: Path) -> None:
    kit = _copy(tmp_path, "qiaojiaren")
    text = (kit / "kit.toml").read_text(encoding="utf-8")
    # The same 52x16 mm artwork blown up to 104x32 mm is 150 dpi.
    text = text.replace(
        'file = "artwork/ad_front.jpg"\nx = 4\ny = 90\nw = 52\nh = 16',
        'file = "artwork/ad_front.jpg"\nx = 4\ny = 90\nw = 104\nh = 32',
    )
    (kit / "kit.toml").write_text(text, encoding="utf-8")
    with pytest.raises(KitError, match=r"150 dpi"):
        load_kit(kit)


def test_missing_artwork_and_unknown_font(tmp_path: Path) -> None:
    kit = _copy(tmp_path, "qiaojiaren")
    (kit / "artwork" / "ad_front.jpg").unlink()
    with pytest.raises(KitError, match=r"套件中找不到图稿 'artwork/ad_front\.jpg'"):
        load_kit(kit)
    kit2 = _copy(tmp_path / "b")
    text = (
        (kit2 / "kit.toml")
        .read_text(encoding="utf-8")
        .replace('serif = ["lxgw-wenkai"]', 'serif = ["Comic Sans CJK"]')
    )
    (kit2 / "kit.toml").write_text(text, encoding="utf-8")
    with pytest.raises(KitError, match="未知字体 'Comic Sans CJK'"):
        load_kit(kit2)


def test_text_overflow_is_refused_at_load(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    body = (kit / "notice_body.j2").read_text(encoding="utf-8")
    (kit / "notice_body.j2").write_text(body * 4, encoding="utf-8")
    with pytest.raises(KitError, match=r"文字需要 .* 毫米高，文本框只有 170 毫米"):
        load_kit(kit)


def test_template_error_names_kit_file_and_line(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    (kit / "address.j2").write_text(
        "{{ address }}\n{{ unit_name }}\n{{ nosuch_variable }}\n", encoding="utf-8"
    )
    with pytest.raises(KitError) as err:
        load_kit(kit)
    assert "套件 notice" in str(err.value) and "address.j2 第 3 行" in str(err.value)
    assert "nosuch_variable" in str(err.value)


def test_template_syntax_error_names_the_line(tmp_path: Path) -> None:
    kit = _copy(tmp_path)
    (kit / "notice_body.j2").write_text("第一行\n第二行 {% if %}\n", encoding="utf-8")
    with pytest.raises(KitError, match=r"notice_body.j2 第 2 行：TemplateSyntaxError"):
        load_kit(kit)


@pytest.mark.parametrize(
    "trick",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ recipient.__init__.__globals__ }}",
    ],
)
def test_sandbox_refuses_attribute_tricks(tmp_path: Path, trick: str) -> None:
    kit = _copy(tmp_path)
    (kit / "address.j2").write_text(f"{{{{ address }}}}\n{trick}\n", encoding="utf-8")
    with pytest.raises(KitError, match=r"address.j2 第 2 行：(SecurityError|UndefinedError).*unsafe"):
        load_kit(kit)


def test_failing_template_skips_only_that_piece(tmp_path: Path) -> None:
    kit_dir = _copy(tmp_path)
    (kit_dir / "address.j2").write_text(
        "{{ address }}\n{{ township[0] }} {{ unit_name }}\n{{ name }} 收\n", encoding="utf-8"
    )
    kit = load_kit(kit_dir)
    good = sample_recipients(1)[0]
    bad = Recipient(
        number="B-1", seq=2, name="李四", gender="M", unit_name="某厂", address="某路1号", postcode="341000"
    )
    result = render_letters(kit, [good, bad], envelopes=tmp_path / "e.pdf", letters=tmp_path / "l.pdf")
    assert [o.number for o in result.rendered] == [good.number]
    assert result.failed[0].number == "B-1"
    assert "address.j2 第 2 行" in (result.failed[0].error or "")


def _absent_everywhere(kit: Kit) -> str:
    chains = list(kit.fonts.values())
    # Rare characters of CJK extensions B-G; at least one is in no font installed here.
    for ch in "𪚥𠔻𰻞𱁬𫚭𬌗𠀋𡃁":
        if all(chain.font_for(ch) is None for chain in chains):
            return ch
    raise AssertionError("every candidate rare character is covered; pick another")


def test_glyph_check_names_the_pieces(qiaojiaren: Kit, tmp_path: Path) -> None:
    rare = _absent_everywhere(qiaojiaren)
    people = sample_recipients(3)
    odd = Recipient(
        number="G-1",
        seq=4,
        name=f"王{rare}英",
        gender="F",
        unit_name="县医院",
        address="人民路1号",
        postcode="341000",
    )
    assert check_glyphs(qiaojiaren, [*people, odd]) == {"G-1": rare}
    result = render_letters(
        qiaojiaren, [*people, odd], envelopes=tmp_path / "e.pdf", letters=tmp_path / "l.pdf"
    )
    assert [o.number for o in result.failed] == ["G-1"]
    assert f"U+{ord(rare):04X}" in (result.failed[0].error or "")


def test_fallback_font_draws_what_the_first_lacks(qiaojiaren: Kit) -> None:
    sans = qiaojiaren.fonts["sans"]
    assert len(sans.fonts) >= 2
    first, rest = sans.fonts[0], sans.fonts[1:]
    # Find a CJK character the design font lacks but a fallback has, and check it is not reported.
    ch = next(
        (chr(c) for f in rest for c in sorted(f.cmap) if 0x4E00 <= c <= 0x9FFF and c not in first.cmap), None
    )
    if ch is None:
        pytest.skip("the fallback fonts add no CJK character here")
    assert sans.missing(f"王{ch}") == ""
    assert [f for f, _ in sans.runs(f"王{ch}")] == [first, sans.font_for(ch)]


def test_no_font_at_all_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from outreach.render import fonts

    monkeypatch.setattr(fonts, "find_family", lambda name: None)
    with pytest.raises(KitError, match="apt install fonts-wqy-microhei"):
        resolve_chain("sans", ["wqy-microhei"])
