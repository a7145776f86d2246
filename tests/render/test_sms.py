"""SMS length and parts as the gateway bills them, the opt-out, the kit's maximum."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from outreach.render import Recipient, kits_dir, load_kit, render_sms, sms_length, sms_parts
from outreach.render.sms import compose
from outreach.settings import get_settings


@pytest.mark.parametrize(
    ("length", "parts"), [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_parts_edges(length: int, parts: int) -> None:
    text = "字" * length
    assert sms_length(text) == length
    assert sms_parts(text) == parts


def test_signature_and_opt_out_are_counted() -> None:
    text = compose("县总工会", "字" * 57, "拒收请回复R")
    assert text.startswith("【县总工会】") and text.endswith("拒收请回复R")
    assert sms_length(text) == 6 + 57 + 6 + 0 == 69
    assert sms_parts(text) == 1
    assert sms_parts(compose("县总工会", "字" * 59, "拒收请回复R")) == 2  # 71 with the signature


def test_character_beyond_bmp_counts_twice() -> None:
    assert sms_length("𠀋") == 2
    assert sms_parts("字" * 69 + "𠀋") == 2


def _person(name: str, mobile: str | None = "13800138000") -> Recipient:
    return Recipient(
        number="S-1",
        seq=1,
        name=name,
        gender="F",
        unit_name="县医院",
        address=None,
        postcode=None,
        mobile=mobile,
    )


def test_message_carries_signature_text_and_opt_out() -> None:
    kit = load_kit("hardship_sms")
    [msg] = render_sms(kit, [_person("王秀英")])
    assert msg.error is None
    assert msg.text.startswith("【尤溪县总工会】王秀英女士，")
    assert msg.text.endswith(get_settings().sms_opt_out_text)
    assert (msg.length, msg.parts) == (sms_length(msg.text), sms_parts(msg.text))


def test_over_the_kits_maximum_is_refused(tmp_path: Path) -> None:
    kit_dir = tmp_path / "sms"
    shutil.copytree(kits_dir() / "hardship_sms", kit_dir)
    manifest = kit_dir / "kit.toml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("max_length = 134", "max_length = 80"), encoding="utf-8"
    )
    kit = load_kit(kit_dir)  # the sample messages are 69 and 71 characters
    [short, long] = render_sms(kit, [_person("王秀英"), _person("欧阳慕容雪" * 3)])
    assert short.error is None
    assert long.error is not None and "上限 80" in long.error


def test_missing_mobile_is_reported() -> None:
    [msg] = render_sms(load_kit("hardship_sms"), [_person("王秀英", mobile=None)])
    assert msg.error == "没有手机号码"
