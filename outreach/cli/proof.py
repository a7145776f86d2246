"""`outreach proof`: renders a few pieces of a kit, with PNG previews, for a person to check by eye.

Which recipients a registry file gives a proof, and how its rows are read, is the importer's business
(audiences.importer.proof_recipients); this command parses arguments, renders and says what it made.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import typer

from audiences.importer import proof_recipients
from outreach.cli.output import console, err_console, safe
from outreach.cli.paths import output_folder
from outreach.errors import InputError
from outreach.i18n import _
from outreach.render import KitOptions, Recipient, load_kit, render_letters, render_sms, sample_recipients
from outreach.settings import get_settings

PROOF_PIECES = 5
PREVIEW_DPI = 80
# Rows refused by the import's rules that the proof names; the rest are counted.
REJECTIONS_SHOWN = 5


def _registry_recipients(registry: Path) -> list[Recipient]:
    """The proof's recipients from a registry file, naming the rows its rules refused."""
    chosen = proof_recipients(path=registry, pieces=PROOF_PIECES)
    for rejection in chosen.rejections[:REJECTIONS_SHOWN]:
        err_console.print(safe(_("row left out: {problem}", problem=rejection.describe())))
    if len(chosen.rejections) > REJECTIONS_SHOWN:
        err_console.print(
            safe(_("... and {count} more problems", count=len(chosen.rejections) - REJECTIONS_SHOWN))
        )
    return chosen.recipients


def previews(pdf: Path, out: Path, prefix: str, pages: int) -> list[Path]:
    """PNG previews of the first pages (poppler's pdftoppm)."""
    if shutil.which("pdftoppm") is None:
        raise InputError(_("pdftoppm not found: install poppler-utils for PNG previews"))
    # A fixed program found on PATH, given our own file names.
    subprocess.run(  # noqa: S603
        [  # noqa: S607
            "pdftoppm",
            "-png",
            "-r",
            str(PREVIEW_DPI),
            "-f",
            "1",
            "-l",
            str(pages),
            str(pdf),
            str(out / prefix),
        ],
        check=True,
    )
    return sorted(out.glob(f"{prefix}*.png"))


def proof(
    kit: str = typer.Argument(..., help=_("Kit name in templates/ or a kit folder.")),
    out: Path = typer.Option(
        ..., "--out", help=_("Folder for the proof PDFs and PNG previews."), callback=output_folder
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        help=_("A registry file (CSV or XLSX, as `registry import` reads it) to take the recipients from."),
    ),
    sample: int | None = typer.Option(None, "--sample", min=1, max=1000, help=_("Synthesise N recipients.")),
) -> None:
    if registry is not None and sample is not None:
        raise InputError(_("give --registry FILE or --sample N, not both"))
    loaded = load_kit(kit, KitOptions.from_settings(get_settings()))
    recipients = _registry_recipients(registry) if registry else sample_recipients(sample or PROOF_PIECES)
    out.mkdir(parents=True, exist_ok=True)
    if loaded.channel == "sms":
        lines = []
        for msg in render_sms(loaded, recipients):
            status = msg.error or _("{length} chars, {parts} part(s)", length=msg.length, parts=msg.parts)
            lines.append(f"{msg.number}\t{status}\t{msg.text}")
        (out / "sms.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        for line in lines:
            console.print(safe(line))
        return
    envelopes, letters = out / "envelopes.pdf", out / "letters.pdf"
    result = render_letters(loaded, recipients, envelopes=envelopes, letters=letters)
    for failed in result.failed:
        err_console.print(safe(_("skipped {piece}: {error}", piece=failed.number, error=failed.error)))
    pngs = previews(envelopes, out, "envelope", 2) + previews(letters, out, "letter", loaded.letter_pages)
    console.print(
        safe(
            _(
                "kit {kit} ({digest}): {count} pieces -> {envelopes}, {letters}",
                kit=loaded.name,
                digest=loaded.digest[:12],
                count=len(result.rendered),
                envelopes=envelopes,
                letters=letters,
            )
        )
    )
    for png in pngs:
        console.print(safe(_("preview {path}", path=png)))


def register(app: typer.Typer) -> None:
    """Adds the `proof` command to the top-level app."""
    app.command(
        "proof",
        help=_(
            "Renders a proof of a kit: a few pieces (longest name and address included) and PNG previews."
        ),
    )(proof)
