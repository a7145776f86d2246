"""The `outreach` command: one entry point, a sub-command per domain."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from outreach.cli.output import err_console, safe
from outreach.cli.usage import USAGE_EXIT, is_no_args_help, is_usage_error, localise_help, usage_message
from outreach.errors import OutreachError
from outreach.i18n import _

app = typer.Typer(
    name="outreach",
    help=_("Outreach: registry import, audiences, print-ready letters and SMS, campaign runs, the ledger."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each domain owns its commands; importing here keeps start-up cheap for `outreach --help`.
    from outreach.cli import audience, campaign, db, demo, ledger, offer, proof, registry, run, serve, user
    from outreach.cli.printshop import app as printshop_app
    from outreach.cli.sms import app as sms_app

    app.add_typer(db.app, name="db")
    app.add_typer(registry.app, name="registry")
    app.add_typer(audience.app, name="audience")
    app.add_typer(ledger.app, name="ledger")
    app.add_typer(campaign.app, name="campaign")
    app.add_typer(run.app, name="run")
    app.add_typer(run.batch_app, name="batch")
    app.add_typer(printshop_app, name="printshop")
    app.add_typer(user.app, name="user")
    app.add_typer(offer.app, name="offer")
    app.add_typer(sms_app, name="sms")
    serve.register(app)
    proof.register(app)
    demo.register(app)


_register()


def main() -> None:
    """Runs the CLI: a refusal is one line, exit 1; a usage mistake one line, exit 2; never a traceback."""
    localise_help()
    try:
        code = app(standalone_mode=False)
    except OutreachError as exc:
        _print_error(str(exc))
        sys.exit(1)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(escape(_("aborted")))
        sys.exit(130)
    except (typer.Exit, SystemExit) as exc:
        code = exc.exit_code if isinstance(exc, typer.Exit) else exc.code
        sys.exit(code if isinstance(code, int) else 0)
    except Exception as exc:
        if is_no_args_help(exc):
            sys.exit(USAGE_EXIT)
        if is_usage_error(exc):
            _print_error(usage_message(exc))
            sys.exit(USAGE_EXIT)
        if type(exc).__name__ == "Abort":
            err_console.print(escape(_("aborted")))
            sys.exit(130)
        raise
    sys.exit(code if isinstance(code, int) else 0)


def _print_error(message: str) -> None:
    err_console.print(f"[bold red]{escape(_('error'))}:[/] {safe(message)}", soft_wrap=True)
