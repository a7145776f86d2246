"""`outreach user`: web service accounts (the first admin, print-shop accounts, API tokens for scripts)."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from outreach import db
from outreach.accounts import audit, tokens, users
from outreach.cli.output import console, safe
from outreach.errors import InputError
from outreach.i18n import _

app = typer.Typer(
    help=_("Accounts of the web service: add, list, disable, API tokens."), no_args_is_help=True
)

# The audit log names the command line as where a change came from.
CLI_ACTOR = audit.Actor(username="cli", address="cli")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = typer.prompt(_("Password"), hide_input=True)
    second = typer.prompt(_("Password again"), hide_input=True)
    if first != second:
        raise InputError(_("the two passwords differ"))
    return str(first)


@app.command("add", help=_("Adds an account; the first admin also makes the union's organisation."))
def add(
    username: str = typer.Argument(..., help=_("Account name (lowercase letters, digits, . _ @ -).")),
    org: str = typer.Option(..., "--org", help=_("Organisation the account belongs to.")),
    role: str = typer.Option(
        ..., "--role", help=_("admin, planner, approver, finance (union) or printshop.")
    ),
    name: str | None = typer.Option(None, "--name", help=_("The person's name, as shown on pages.")),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help=_("Read the password from the first line of standard input.")
    ),
) -> None:
    """Adds an account; the first admin also makes the union's organisation."""
    password = _read_password(password_stdin)
    with db.session_scope(db.ensure_schema()) as session:
        if role in ("admin", "planner", "approver", "finance"):
            organisation = users.ensure_union(session=session, name=org)
        else:
            organisation = users.organisation_by_name(session=session, name=org)
        account = users.add(
            session=session,
            username=username,
            password=password,
            role=role,
            organisation=organisation,
            display_name=name,
        )
        audit.record(
            session=session,
            actor=CLI_ACTOR,
            action="account.add",
            object_type="account",
            object_id=account.id,
            after=users.state_of(account),
        )
        console.print(
            _("added account {name} ({role}) of {org}", name=safe(account.username), role=role, org=safe(org))
        )


@app.command("list", help=_("Lists every account."))
def list_() -> None:
    """Lists every account."""
    with db.session_scope(db.ensure_schema()) as session:
        table = Table()
        for header in (_("account"), _("name"), _("role"), _("organisation"), _("state")):
            table.add_column(header)
        for account, org in users.list_accounts(session=session):
            table.add_row(
                safe(account.username),
                safe(account.display_name or ""),
                account.role,
                safe(org.name),
                _("active") if account.active else _("disabled"),
            )
        console.print(table)


@app.command("disable", help=_("Disables an account: its sessions end and its tokens are revoked."))
def disable(username: str = typer.Argument(..., help=_("Account name."))) -> None:
    """Disables an account: its sessions end and its tokens are revoked."""
    with db.session_scope(db.ensure_schema()) as session:
        account = users.get(session=session, username=username)
        before = users.state_of(account)
        users.disable(session=session, username=username)
        audit.record(
            session=session,
            actor=CLI_ACTOR,
            action="account.disable",
            object_type="account",
            object_id=account.id,
            before=before,
            after=users.state_of(account),
        )
        console.print(_("account {name} is disabled", name=safe(account.username)))


@app.command("token", help=_("Issues an API token (shown once), lists tokens, or revokes one."))
def token(
    username: str = typer.Argument(..., help=_("Account name.")),
    name: str = typer.Option("cli", "--name", help=_("What the token is for.")),
    days: int = typer.Option(tokens.DEFAULT_DAYS, "--days", help=_("Days until the token expires.")),
    list_them: bool = typer.Option(False, "--list", help=_("List the account's tokens instead.")),
    revoke: int | None = typer.Option(None, "--revoke", help=_("Revoke the token with this id.")),
) -> None:
    """Issues an API token (shown once), lists tokens, or revokes one."""
    with db.session_scope(db.ensure_schema()) as session:
        account = users.get(session=session, username=username)
        if list_them:
            table = Table()
            for header in ("id", _("name"), _("starts with"), _("expires"), _("state")):
                table.add_column(header)
            for row in tokens.list_tokens(session=session, account=account):
                state = _("revoked") if row.revoked_at else _("active")
                table.add_row(str(row.id), safe(row.name), row.prefix, row.expires_at.isoformat(), state)
            console.print(table)
            return
        if revoke is not None:
            row = tokens.revoke(session=session, account=account, token_id=revoke)
            audit.record(
                session=session, actor=CLI_ACTOR, action="token.revoke", object_type="token", object_id=row.id
            )
            console.print(_("token {id} is revoked", id=row.id))
            return
        row, secret = tokens.issue(session=session, account=account, name=name, days=days)
        audit.record(
            session=session, actor=CLI_ACTOR, action="token.issue", object_type="token", object_id=row.id
        )
        console.print(
            _(
                "token {id} for {name}, expires {expires}; it is shown only now:",
                id=row.id,
                name=safe(account.username),
                expires=row.expires_at.date().isoformat(),
            )
        )
        # Printed bare on its own line so that scripts can take it with `tail -1`.
        print(secret)
