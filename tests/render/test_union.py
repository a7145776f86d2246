"""The union profile: one set of the union's details fills every kit; the renderer takes it (and its other
settings) as arguments and reads no settings itself."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pypdf
import pytest

from outreach.errors import KitError
from outreach.render import KitOptions, kits_dir, load_kit, render_letters, render_sms, sample_recipients
from outreach.settings import Settings, UnionProfile

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDERS = ("某某", "341000", "0797")
OTHER_UNION = UnionProfile(
    name="大田县总工会",
    address="福建省三明市大田县均溪镇玉城路2号",
    postcode="366100",
    phone="0598-7222351",
    hotline="12351",
)


def test_the_renderer_reads_no_settings() -> None:
    for path in sorted((ROOT / "outreach" / "render").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "outreach.settings":
                assert "get_settings" not in {a.name for a in node.names}, path.name


def test_settings_come_from_the_environment_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTREACH_UNION__NAME", "大田县总工会")
    monkeypatch.setenv("OUTREACH_UNION__POSTCODE", "366100")
    monkeypatch.setenv("OUTREACH_SMS_OPT_OUT_TEXT", "回T退订")
    options = KitOptions.from_settings(Settings())
    assert options.union.name == "大田县总工会" and options.union.postcode == "366100"
    assert options.union.hotline == "12351" and options.sms_opt_out == "回T退订"
    monkeypatch.setenv("OUTREACH_UNION__POSTCODE", "3661")
    with pytest.raises(ValueError, match="postcode"):
        Settings()


def test_every_kit_prints_the_union_profile(tmp_path: Path) -> None:
    options = KitOptions(union=OTHER_UNION, sms_opt_out="回T退订")
    for name in ("qiaojiaren", "notice"):
        kit = load_kit(name, options)
        env, let = tmp_path / f"{name}-e.pdf", tmp_path / f"{name}-l.pdf"
        render_letters(kit, sample_recipients(2), envelopes=env, letters=let)
        front = pypdf.PdfReader(env).pages[0].extract_text()
        assert "福建省三明市大田县均溪镇玉城路2号" in front and "电话 0598-7222351" in front
        assert "邮政编码：366100" in front
        letter = pypdf.PdfReader(let).pages[0].extract_text()
        assert "大田县总工会" in letter and "12351" in letter
        assert not any(p in front + letter for p in (*PLACEHOLDERS, "尤溪县总工会"))
    assert load_kit("qiaojiaren", options).sender["name"] == "大田县总工会女职工委员会"
    assert load_kit("notice", options).postage == ("邮资已付", "大田县总工会")
    [msg] = render_sms(load_kit("hardship_sms", options), sample_recipients(1))
    assert msg.text.startswith("【大田县总工会】") and msg.text.endswith("回T退订") and "12351" in msg.text
    signed = KitOptions(union=OTHER_UNION.model_copy(update={"sms_signature": "大田工会"}))
    [msg] = render_sms(load_kit("hardship_sms", signed), sample_recipients(1))
    assert msg.text.startswith("【大田工会】")


def test_shipped_kits_carry_no_placeholders() -> None:
    for path in sorted(kits_dir().rglob("*")):
        if path.is_file() and path.suffix in (".toml", ".j2", ".py"):
            text = path.read_text(encoding="utf-8")
            assert not any(p in text for p in PLACEHOLDERS), path


def test_a_kit_may_not_set_the_unions_details(tmp_path: Path) -> None:
    kit = tmp_path / "notice"
    shutil.copytree(kits_dir() / "notice", kit)
    manifest = kit / "kit.toml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8") + '\n[sender]\nname = "某某县总工会"\npostcode = "341000"\n',
        encoding="utf-8",
    )
    with pytest.raises(KitError) as err:
        load_kit(kit)
    assert "[sender]" in str(err.value) and "name, postcode" in str(err.value)
    assert "OUTREACH_UNION__NAME" in str(err.value)


def test_kit_art_in_the_way_of_the_unions_address_is_refused_at_load(tmp_path: Path) -> None:
    kit = tmp_path / "qiaojiaren"
    shutil.copytree(kits_dir() / "qiaojiaren", kit)
    manifest = kit / "kit.toml"
    text = manifest.read_text(encoding="utf-8")
    # Where the barcode sat before the union's full address came in: it met the address's first characters.
    moved = text.replace('kind = "number"\nx = 20\ny = 76', 'kind = "number"\nx = 118\ny = 76')
    assert moved != text
    manifest.write_text(moved, encoding="utf-8")
    with pytest.raises(KitError, match=r"envelope.front 第 7 项）：与寄件人地址和名称（工会资料）重叠"):
        load_kit(kit)
    short = OTHER_UNION.model_copy(update={"address": "大田县均溪镇玉城路2号"})
    load_kit(kit, KitOptions(union=short))  # a shorter address clears it


def test_settings_fonts_come_first(qiaojiaren: object) -> None:
    fallback = load_kit("notice").fonts["serif"].primary.path
    kit = load_kit("notice", KitOptions(fonts=(fallback,)))
    assert kit.fonts["sans"].primary.path == fallback
