"""`outreach db`: the database schema."""

from __future__ import annotations

import typer

from outreach import db
from outreach.cli.output import console, safe
from outreach.i18n import _

app = typer.Typer(help=_("The database schema."), no_args_is_help=True)


@app.command(help=_("Creates or upgrades the schema to this version of Outreach."))
def upgrade() -> None:
    engine = db.get_engine()
    db.upgrade(engine)
    console.print(_("schema is current on {url}", url=safe(engine.url.render_as_string(hide_password=True))))


@app.command(help=_("Says whether the schema is current."))
def status() -> None:
    engine = db.get_engine()
    have, want = db.applied_heads(engine), db.current_heads()
    state = _("current") if have == want else _("needs `outreach db upgrade`")
    console.print(
        _(
            "{url}: {state} (have {have})",
            url=safe(engine.url.render_as_string(hide_password=True)),
            state=state,
            have=", ".join(sorted(have)) or "-",
        )
    )
