"""A merchant's counter: scan (a barcode scanner types the code and Enter) or type a letter's code, or read it
with the phone's camera where the browser has BarcodeDetector; the answer, and the merchant's own figures.
Also the planners' redemption report page. Server-rendered; the camera script is optional."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from outreach.accounts.errors import Throttled
from outreach.campaigns import service as campaigns
from outreach.i18n import _
from outreach.offers import reports
from outreach.offers import service as offers
from outreach.web.api.offers import csv_response, redeem_code
from outreach.web.dependencies import DbSession, Principal, require
from outreach.web.pages.render import render

router = APIRouter(include_in_schema=False)

# Camera reading where the browser can (Chrome on Android, for one); typing and scanners work without it.
SCAN_JS = """\
(function () {
  "use strict";
  var button = document.getElementById("camera");
  var video = document.getElementById("camera-view");
  var input = document.getElementById("code");
  var form = document.getElementById("counter-form");
  if (!button || !("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
  window.BarcodeDetector.getSupportedFormats().then(function (formats) {
    if (formats.indexOf("qr_code") < 0) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.hidden = false;
        video.srcObject = stream;
        video.play();
        var look = function () {
          detector.detect(video).then(function (found) {
            if (found.length) {
              stream.getTracks().forEach(function (t) { t.stop(); });
              input.value = found[0].rawValue;
              form.submit();
            } else {
              window.requestAnimationFrame(look);
            }
          }, function () { window.requestAnimationFrame(look); });
        };
        look();
      }, function () { button.hidden = true; });
    });
  });
})();
"""


def _counter(
    request: Request,
    session: DbSession,
    principal: Principal,
    *,
    result: offers.Lookup | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "counter.html",
        status=status,
        principal=principal,
        result=result,
        error=error,
        offers=offers.current_offers(session=session, merchant_id=principal.organisation_id),
    )


@router.get("/counter")
def counter(
    request: Request, session: DbSession, principal: Annotated[Principal, Depends(require("offers.redeem"))]
) -> Response:
    return _counter(request, session, principal)


@router.post("/counter")
def counter_scan(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("offers.redeem"))],
    code: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        found = redeem_code(session=session, principal=principal, typed=code)
    except Throttled as exc:
        return _counter(request, session, principal, error=str(exc), status=429)
    return _counter(request, session, principal, result=found)


@router.get("/counter/scan.js")
def scan_js() -> Response:
    return Response(SCAN_JS, media_type="text/javascript; charset=utf-8")


@router.get("/counter/figures")
def figures(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("offers.own_report"))],
) -> Response:
    found = reports.merchant_report(session=session, merchant_id=principal.organisation_id)
    charts = {
        o.booking_id: reports.bar_chart_svg(
            [w for w, _n in o.weeks], [n for _w, n in o.weeks], title=_("Redemptions by week")
        )
        for o in found
    }
    return render(
        request,
        "counter_figures.html",
        principal=principal,
        offers=found,
        charts=charts,
        hidden=reports.HIDDEN,
    )


@router.get("/counter/figures.csv")
def figures_csv(
    session: DbSession, principal: Annotated[Principal, Depends(require("offers.own_report"))]
) -> Response:
    found = reports.merchant_report(session=session, merchant_id=principal.organisation_id)
    return csv_response(reports.merchant_csv(found), "redemptions.csv")


@router.get("/offers/report")
def planner_report(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, Depends(require("offers.report"))],
    campaign: Annotated[str, Query(max_length=100)] = "",
    period: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    if not campaign.strip() or not period.strip():
        # Which campaign and period: the letter campaigns and the periods they have run.
        choices = [c for c in campaigns.summaries(session=session) if c.channel == "letter"]
        return render(
            request, "counter_report_pick.html", principal=principal, section="offers", choices=choices
        )
    found = campaigns.get_by_ref(session=session, ref=campaign)
    report = reports.planner_report(session=session, campaign=found, period=period)
    chart = reports.bar_chart_svg(
        list(report.weeks), [report.by_week[w] for w in report.weeks], title=_("Redemptions by week")
    )
    return render(
        request,
        "counter_report.html",
        principal=principal,
        report=report,
        chart=chart,
        campaign_ref=str(found.id),
        dimensions=reports.DIMENSIONS,
        section="offers",
    )
