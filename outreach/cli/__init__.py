"""The `outreach` command: one entry point, a sub-command per domain."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from outreach.errors import OutreachError

app = typer.Typer(
    name="outreach",
    help="Outreach: registry import, audiences, print-ready letters and SMS, campaign runs, the cost ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _register() -> None:
    # Each domain owns its commands; importing here keeps start-up cheap for `outreach --help`.
    from outreach.cli import audience, campaign, db, demo, ledger, proof, registry, run

    app.add_typer(db.app, name="db")
    app.add_typer(registry.app, name="registry")
    app.add_typer(audience.app, name="audience")
    app.add_typer(ledger.app, name="ledger")
    app.add_typer(campaign.app, name="campaign")
    app.add_typer(run.app, name="run")
    app.add_typer(run.batch_app, name="batch")
    proof.register(app)
    demo.register(app)


_register()


def main() -> None:
    """Runs the CLI; an OutreachError becomes a clear message and exit status 1, never a traceback."""
    try:
        code = app(standalone_mode=False)
    except OutreachError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = exc.exit_code if isinstance(exc, typer.Exit) else exc.code
        sys.exit(code if isinstance(code, int) else 0)
    except Exception as exc:
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
