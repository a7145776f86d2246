"""Merchant offers in the API: a merchant's counter (look a code up, record its redemption once), its own
figures, and the planners' report of a campaign period as CSV."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response

from outreach.accounts.errors import Throttled
from outreach.campaigns import service as campaigns
from outreach.offers import reports
from outreach.offers import service as offers
from outreach.offers.schemas import MerchantOfferOut, RedeemIn, RedeemOut, WeekOut
from outreach.web.dependencies import DbSession, Principal, record_refusal, require

router = APIRouter(tags=["offers"])

# The counter's outcomes as HTTP statuses: a refusal is not an error of the caller's request format.
STATUS = {
    "recorded": 201,
    "already": 409,
    "malformed": 422,
    "unknown": 404,
    "other_period": 409,
    "other_merchant": 409,
    "not_yet": 409,
    "expired": 409,
}


def redeem_code(*, session: DbSession, principal: Principal, typed: str) -> offers.Lookup:
    """The counter's look-up for the caller's merchant (shared by the API and the counter page)."""
    try:
        return offers.redeem(
            session=session, actor=principal.actor, merchant_id=principal.organisation_id, typed=typed
        )
    except Throttled as exc:
        record_refusal(session=session, actor=principal.actor, action="offer.throttled", detail=str(exc))
        raise


def lookup_out(found: offers.Lookup) -> RedeemOut:
    """The counter's answer as the API gives it."""
    return RedeemOut(
        outcome=found.outcome,
        recorded=found.recorded,
        message=found.message,
        code=found.code,
        offer_text=found.offer_text,
        at=found.at,
    )


@router.post(
    "/offers/redemptions",
    summary="核销兑换码",
    description="商家扫描或输入信中的兑换码：对本店本期优惠有效则记录一次核销（201）；"
    "同一码在本店再次扫描答复已于何时使用（409）；不存在（404）、其他期、不含本店优惠、过期均不记录，"
    "并写入审计日志。查询不存在的码过多会被限流（429）。",
    response_model=RedeemOut,
    responses={404: {"model": RedeemOut}, 409: {"model": RedeemOut}, 422: {"model": RedeemOut}},
)
def redeem(
    body: RedeemIn,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("offers.redeem"))],
) -> JSONResponse:
    found = redeem_code(session=session, principal=principal, typed=body.code)
    return JSONResponse(lookup_out(found).model_dump(mode="json"), status_code=STATUS[found.outcome])


@router.get(
    "/offers/mine",
    summary="本店优惠的核销统计",
    description="本店各项优惠每周的核销数；少于 5 的格子不显示（null），总数同理。",
    response_model=list[MerchantOfferOut],
)
def mine(
    session: DbSession, principal: Annotated[Principal, Depends(require("offers.own_report"))]
) -> list[MerchantOfferOut]:
    return [
        MerchantOfferOut(
            booking_id=o.booking_id,
            campaign=o.campaign,
            period=o.period,
            offer_text=o.offer_text,
            valid_from=o.valid_from,
            valid_until=o.valid_until,
            weeks=[WeekOut(week=w, redemptions=n) for w, n in o.weeks],
            total=o.total,
        )
        for o in reports.merchant_report(session=session, merchant_id=principal.organisation_id)
    ]


@router.get(
    "/offers/report.csv",
    summary="活动某期的核销报表（CSV）",
    description="按优惠、乡镇、单位类别、年龄段分列每周核销数、寄出件数与占比。",
    response_class=Response,
)
def report_csv(
    session: DbSession,
    principal: Annotated[Principal, Depends(require("offers.report"))],
    campaign: Annotated[str, Query(max_length=100, description="活动名称或编号")],
    period: Annotated[str, Query(max_length=20, description="季度，如 2027-Q1")],
) -> Response:
    found = campaigns.get_by_ref(session=session, ref=campaign)
    report = reports.planner_report(session=session, campaign=found, period=period)
    return csv_response(reports.planner_csv(report), f"redemptions-{found.id}-{report.period}.csv")


def csv_response(text: str, filename: str) -> Response:
    """A CSV download (UTF-8 with a BOM, so that spreadsheet programs read the Chinese right)."""
    return Response(
        "\ufeff" + text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
