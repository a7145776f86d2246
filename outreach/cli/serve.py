"""`outreach serve`: the web service (REST API and the print-shop portal) under uvicorn."""

from __future__ import annotations

import typer

from outreach.i18n import _


def register(app: typer.Typer) -> None:
    """Adds `outreach serve` to the CLI."""

    @app.command("serve", help=_("Serves the web service: the pages, the API under /api/v1, /healthz."))
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help=_("Address to listen on (0.0.0.0: every one).")),
        port: int = typer.Option(8000, "--port", help=_("Port to listen on.")),
        workers: int = typer.Option(1, "--workers", help=_("Web processes (each with its own connections).")),
    ) -> None:
        """Serves the web service: the API under /api/v1, the print-shop portal, /healthz."""
        import uvicorn

        from outreach import db

        # The embedded SQLite gets its schema here; a server database must have been upgraded already.
        db.ensure_schema()
        uvicorn.run(
            "outreach.web.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            log_level="info",
        )
