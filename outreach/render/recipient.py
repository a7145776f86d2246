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
    ("城关镇", "县第一人民医院", "城关镇人民路128号"),
    ("桃源镇", "桃源纺织服装有限公司", "桃源镇工业园区纬二路6号"),
    ("城关镇", "县实验小学", "城关镇文昌街45号"),
    ("河西乡", "河西乡卫生院", "河西乡新街村196号"),
    ("开发区", "恒丰电子科技股份有限公司", "经济开发区创业大道88号"),
)
SAMPLE_POSTCODES = ("341000", "341100", "341000", "341200", "341300")
# The longest name and address the proof must show fit: a four-character compound-surname name and a long
# rural address of a long unit name.
LONG_RECIPIENT = dict(
    name="欧阳慕容雪",
    unit_name="江西省赣州市某某县经济技术开发区恒丰电子科技股份有限公司工会委员会",
    address="江西省赣州市某某县经济技术开发区创业大道188号恒丰科技产业园三期7栋东侧2单元",
    postcode="341399",
    township="经济技术开发区",
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
                **fields,
            )
        )
    return out
