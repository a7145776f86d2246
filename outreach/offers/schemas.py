"""What the offers API takes and gives (Pydantic): a code to look up, the counter's answer, the figures."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class RedeemIn(BaseModel):
    """兑换码核销请求。"""

    code: str = Field(description="扫描或输入的兑换码（10 位，大小写、I/L/O 与连字符均可）", max_length=64)


class RedeemOut(BaseModel):
    """柜台的答复：是否有效、是否已记录、说明文字；绝不含收件人的姓名、单位或地址。"""

    outcome: str = Field(
        description="recorded 已核销；already 已在本店用过；malformed 格式不对；unknown 不存在；"
        "other_period 其他期；other_merchant 不含本店优惠；not_yet 未开始；expired 已过期"
    )
    recorded: bool = Field(description="本次是否记录了核销")
    message: str = Field(description="给店员看的说明")
    code: str = Field(description="规范化后的兑换码")
    offer_text: str | None = Field(default=None, description="本店的优惠内容")
    at: datetime | None = Field(default=None, description="核销时间（本次或上次）")


class WeekOut(BaseModel):
    """一周的核销数；少于 5 不显示（null）。"""

    week: str = Field(description="ISO 周，如 2027-W10")
    redemptions: int | None = Field(description="核销数，少于 5 为 null")


class MerchantOfferOut(BaseModel):
    """商家的一项优惠及其每周核销数（隐私下限：少于 5 不显示）。"""

    booking_id: int
    campaign: str
    period: str
    offer_text: str
    valid_from: date
    valid_until: date
    weeks: list[WeekOut]
    total: int | None = Field(description="总核销数，少于 5 为 null")
