"""SMS texts: 【signature】 + personalised text + opt-out, counted the way the gateway bills them.
The signature and the opt-out text come with the kit (KitOptions); nothing here reads settings."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from outreach.errors import KitError
from outreach.i18n import _
from outreach.render.kit import Kit, run_template, template_error
from outreach.render.recipient import Recipient, base_variables, piece_variables

SINGLE_LIMIT = 70  # characters in a one-part message
PART_LIMIT = 67  # characters per part once split (the rest carries the concatenation header)


@dataclass(slots=True)
class SmsMessage:
    """One SMS as sent and billed; `error` set when it was refused (and then it is not sent)."""

    number: str
    mobile: str | None
    text: str
    length: int
    parts: int
    error: str | None


def sms_length(text: str) -> int:
    """Length as the gateway counts it: UCS-2 code units, so a character beyond the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


def sms_parts(text: str) -> int:
    """Billed parts: one up to 70 characters, otherwise one per 67 characters."""
    n = sms_length(text)
    if n == 0:
        return 0
    return 1 if n <= SINGLE_LIMIT else math.ceil(n / PART_LIMIT)


def compose(signature: str, body: str, opt_out: str) -> str:
    """The whole message: 【signature】 body opt-out, with the body's line breaks folded."""
    body = "".join(line.strip() for line in body.strip().splitlines())
    return f"【{signature}】{body}{opt_out}"


def render_sms(
    kit: Kit, recipients: Sequence[Recipient], *, context: Mapping[str, object] | None = None
) -> list[SmsMessage]:
    """One message per recipient; over-long text or a failing template is reported on the message."""
    if kit.channel != "sms" or kit.sms_template is None:
        raise KitError(_("kit {kit}: is a {channel} kit, not an SMS kit", kit=kit.name, channel=kit.channel))
    base = base_variables(kit.title, kit.sender, kit.variables, context)
    out: list[SmsMessage] = []
    for r in recipients:
        try:
            body = run_template(
                kit.name, kit.sms_template, piece_variables(base, r), template_file=kit.sms_where
            )
        except KitError as exc:  # a template failure is this piece's, reported with file and line
            out.append(SmsMessage(r.number, r.mobile, "", 0, 0, str(exc)))
            continue
        text = compose(kit.sms_signature, body, kit.sms_opt_out)
        length = sms_length(text)
        error = None
        if length > kit.sms_max_length:
            error = _(
                "{length} characters, over the kit's maximum of {max}", length=length, max=kit.sms_max_length
            )
        elif not r.mobile:
            error = _("no mobile number")
        out.append(SmsMessage(r.number, r.mobile, text, length, sms_parts(text), error))
    return out


def draft(
    kit: Kit, source: str, recipient: Recipient, *, context: Mapping[str, object] | None = None
) -> SmsMessage:
    """A text being written for an SMS kit: compiled in the kit's sandbox, rendered for one recipient, with
    the kit's 【signature】 and opt-out, and counted as the gateway bills it (a bad template is the error)."""
    if kit.channel != "sms":
        raise KitError(_("kit {kit}: is a {channel} kit, not an SMS kit", kit=kit.name, channel=kit.channel))
    where = kit.sms_where or "sms.j2"
    try:
        template = kit.env.from_string(source)
    except Exception as exc:  # the planner's text is template code: a syntax error is reported, not raised
        return SmsMessage(
            recipient.number,
            recipient.mobile,
            "",
            0,
            0,
            str(template_error(kit.name, exc, template_file=where)),
        )
    base = base_variables(kit.title, kit.sender, kit.variables, context)
    try:
        body = run_template(kit.name, template, piece_variables(base, recipient), template_file=where)
    except KitError as exc:
        return SmsMessage(recipient.number, recipient.mobile, "", 0, 0, str(exc))
    text = compose(kit.sms_signature, body, kit.sms_opt_out)
    length = sms_length(text)
    error = None
    if kit.sms_max_length and length > kit.sms_max_length:
        error = _(
            "{length} characters, over the kit's maximum of {max}", length=length, max=kit.sms_max_length
        )
    return SmsMessage(recipient.number, recipient.mobile, text, length, sms_parts(text), error)
