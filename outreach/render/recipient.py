"""The recipient of one piece as the renderer sees it, and the variables its templates get."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HONORIFICS = {"F": "女士", "M": "先生"}


@dataclass(frozen=True, slots=True)
class Recipient:
    """A frozen piece, as the run stores it (outreach/runs/models.py Piece)."""

    number: str
    seq: int
    name: str
    gender: str
    unit_name: str
    address: str | None
    postcode: str | None
    township: str | None = None
    mobile: str | None = None
    # The redemption code the letter's QR code carries (outreach.offers); None prints no QR code.
    code: str | None = None


def base_variables(
    kit_title: str,
    sender: Mapping[str, str],
    defaults: Mapping[str, object],
    context: Mapping[str, object] | None,
) -> dict[str, Any]:
    """Campaign-level template variables: the kit's defaults overridden by the run's context."""
    out: dict[str, Any] = {"kit_title": kit_title, "sender": dict(sender)}
    out.update(defaults)
    if context:
        out.update(context)
    return out


def piece_variables(base: Mapping[str, Any], r: Recipient) -> dict[str, Any]:
    """Template variables of one piece: the campaign's plus the recipient's own."""
    out = dict(base)
    out["name"] = r.name
    out["honorific"] = HONORIFICS.get(r.gender, "")
    out["unit_name"] = r.unit_name
    out["address"] = r.address or ""
    out["postcode"] = r.postcode or ""
    out["township"] = r.township or ""
    out["number"] = r.number
    out["seq"] = r.seq
    out["mobile"] = r.mobile or ""
    out["code"] = r.code or ""
    out["recipient"] = r
    return out


SAMPLE_NAMES = (
    "王秀英",
    "李桂兰",
    "张丽娟",
    "刘芳",
    "陈美玲",
    "杨淑珍",
    "赵红梅",
    "黄晓燕",
    "周玉兰",
    "吴静",
)
SAMPLE_UNITS = (
    ("城关镇", "尤溪县医院", "尤溪县城关镇水南路128号"),
    ("西城镇", "西城纺织服装有限公司", "尤溪县西城镇工业园区纬二路6号"),
    ("城关镇", "尤溪县实验小学", "尤溪县城关镇紫阳大道45号"),
    ("梅仙镇", "梅仙镇卫生院", "尤溪县梅仙镇坪寨村196号"),
    ("城关镇", "恒丰电子科技股份有限公司", "尤溪县城关镇工业路88号"),
)
SAMPLE_POSTCODES = ("365100", "365106", "365100", "365101", "365100")
# The longest name and address the proof must show fit: a four-character compound-surname name and a long
# rural address of a long unit name.
LONG_RECIPIENT = dict(
    name="欧阳慕容雪",
    unit_name="福建省三明市尤溪县经济开发区西城工业园恒丰电子科技股份有限公司工会委员会",
    address="福建省三明市尤溪县经济开发区西城工业园创业大道188号恒丰科技产业园三期7栋东侧2单元",
    postcode="365106",
    township="西城镇",
)


def sample_recipients(n: int, *, run: str = "P000000") -> list[Recipient]:
    """n plausible recipients for proofs, the second of which has the long name and address."""
    out: list[Recipient] = []
    for i in range(n):
        township, unit, address = SAMPLE_UNITS[i % len(SAMPLE_UNITS)]
        fields: dict[str, Any] = dict(
            name=SAMPLE_NAMES[i % len(SAMPLE_NAMES)],
            unit_name=unit,
            address=address,
            postcode=SAMPLE_POSTCODES[i % len(SAMPLE_POSTCODES)],
            township=township,
        )
        if i == 1:
            fields.update(LONG_RECIPIENT)
        out.append(
            Recipient(
                number=f"{run}-{i + 1:06d}",
                seq=i + 1,
                gender="F",
                mobile=f"13{(i * 7919) % 10**9:09d}",
                code=f"PR00F{i + 1:05d}",
                **fields,
            )
        )
    return out
