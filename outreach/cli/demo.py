"""`outreach demo`: the main job end to end on a generated county registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console

from outreach import db
from outreach.cli.output import console, err_console, safe
from outreach.cli.paths import output_folder
from outreach.i18n import _
from outreach.settings import get_settings


def register(app: typer.Typer) -> None:
    """Adds the `demo` command to the top-level app."""
    app.command(
        help=_(
            "Runs the main job end to end on a generated county registry: import, campaign, run, statement."
        )
    )(demo)


def demo(
    out: Path = typer.Option(
        Path("outreach-demo"),
        help=_("Folder for everything the demo makes: registry, database, batches, statement."),
        callback=output_folder,
    ),
    workers: int = typer.Option(
        1, min=1, help=_("Local render processes (without a broker; with one, Celery's workers render).")
    ),
    size: int = typer.Option(
        12_000, min=1, help=_("Workers in the generated registry (about half are women).")
    ),
    as_json: bool = typer.Option(False, "--json", help=_("Print a JSON summary only (absolute paths).")),
    serve: bool = typer.Option(
        False,
        "--serve",
        help=_(
            "Afterwards make an account per role (password from OUTREACH_DEMO_PASSWORD, or generated) and "
            "serve the site on 127.0.0.1 until Ctrl-C."
        ),
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help=_("Port for --serve.")),
) -> None:
    """Generates a county registry, imports it, runs the 俏佳人 campaign for 2027-Q1, prints the statement."""
    from outreach.cli.run import execute
    from outreach.demo import run_demo
    from outreach.ledger.documents import rich_statement

    out = out.resolve()
    settings = get_settings()
    if settings.database_url is None:
        # The embedded default: a fresh SQLite database inside the demo folder.
        for leftover in out.glob("outreach.db*"):
            leftover.unlink()
        os.environ["OUTREACH_DATA_DIR"] = str(out)
    # Whatever the database, the demo's files all land in its folder (not a shared batch store).
    os.environ["OUTREACH_BATCH_DIR"] = str(out / "batches")
    os.environ.pop("OUTREACH_STORAGE_URL", None)
    get_settings.cache_clear()
    db.dispose_engines()
    quiet = as_json
    result = run_demo(
        out=out,
        size=size,
        processes=workers,
        step=None if quiet else (lambda msg: console.print(f"[cyan]•[/] {safe(msg)}")),
        execute=lambda run_id: execute(run_id, processes=workers, quiet=quiet),
    )
    if as_json:
        print(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
        if serve:
            _serve(port, shown=err_console)  # stdout stays one JSON document
        return
    imp = result.imported
    console.print(
        _(
            "registry: {inserted} inserted, {updated} updated, {unchanged} unchanged, {rejected} rejected "
            "(see {path})",
            inserted=f"{imp.inserted:,}",
            updated=f"{imp.updated:,}",
            unchanged=f"{imp.unchanged:,}",
            rejected=f"{imp.rejected:,}",
            path=safe(out / "rejects.csv"),
        )
    )
    console.print(
        _(
            "run {run}: {pieces} pieces in {batches} batches",
            run=result.run,
            pieces=f"{result.pieces:,}",
            batches=len(result.batches),
        )
    )
    if result.failed:
        console.print(
            _("{count} pieces failed: see outreach run status {run}", count=result.failed, run=result.run)
        )
    for b in result.batches[:3]:
        console.print(f"  {safe(b['envelopes'])}\n  {safe(b['letters'])}")
    if len(result.batches) > 3:
        console.print(_("  ... and {count} more batches", count=len(result.batches) - 3))
    assert result.statement is not None
    console.print(rich_statement(result.statement))
    console.print(
        _("statement: {csv}, {pdf}", csv=safe(result.statement_csv), pdf=safe(result.statement_pdf))
    )
    if serve:
        _serve(port, shown=console)


# The demo's accounts: one per union role, and the demo print shop's.
DEMO_ACCOUNTS = (("admin", "admin"), ("planner", "planner"), ("approver", "approver"), ("finance", "finance"))
DEMO_SHOP_ACCOUNT = "printshop"


def _demo_accounts(password: str) -> list[tuple[str, str, str]]:
    """Makes (or resets the password of) an account per role; (user name, role, organisation) of each."""
    from sqlalchemy import select

    from outreach.accounts import users
    from outreach.accounts.models import Organisation
    from outreach.demo import PRINT_SHOP
    from outreach.errors import NotFound

    made = []
    with db.session_scope() as session:
        union = session.scalar(select(Organisation).where(Organisation.kind == "union"))
        if union is None:
            union = users.ensure_union(session=session, name=get_settings().union.name)
        shop = users.organisation_by_name(session=session, name=PRINT_SHOP)
        wanted = [(name, role, union) for name, role in DEMO_ACCOUNTS]
        wanted.append((DEMO_SHOP_ACCOUNT, "printshop", shop))
        for username, role, org in wanted:
            try:
                account = users.get(session=session, username=username)
            except NotFound:
                users.add(session=session, username=username, password=password, role=role, organisation=org)
            else:
                users.set_password(session=session, account=account, password=password)
            made.append((username, role, org.name))
    return made


def _serve(port: int, *, shown: Console) -> None:
    """Makes the demo's accounts, prints them, and serves the site until Ctrl-C."""
    import secrets

    import uvicorn

    from outreach.accounts import users

    password = os.environ.get("OUTREACH_DEMO_PASSWORD") or secrets.token_urlsafe(12)
    users.check_password(password)
    accounts = _demo_accounts(password)
    shown.print(_("accounts of the demo site (every one with the same password):"))
    for username, role, organisation in accounts:
        shown.print(f"  {safe(username)}  ({safe(role)}, {safe(organisation)})")
    shown.print(_("password: {password}", password=safe(password)), soft_wrap=True)
    shown.print(_("the site: http://127.0.0.1:{port}/login (Ctrl-C stops it)", port=port))
    uvicorn.run("outreach.web.app:create_app", factory=True, host="127.0.0.1", port=port, log_level="warning")
