"""`outreach proof`: renders a few pieces of a kit, with PNG previews, for a person to check by eye."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import typer

from outreach.errors import InputError
from outreach.render import Recipient, load_kit, render_letters, render_sms, sample_recipients

REGISTRY_COLUMNS = ("姓名", "单位名称", "单位地址", "单位邮编")
PROOF_PIECES = 5
PREVIEW_DPI = 80


def read_registry(path: Path) -> list[Recipient]:
    """Reads a CSV with 姓名,单位名称,单位地址,单位邮编 (and optional 性别, 手机) columns for a proof."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as UTF-8 CSV ({exc})") from exc
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise InputError(f"{path}: no rows")
    missing = [c for c in REGISTRY_COLUMNS if c not in rows[0]]
    if missing:
        raise InputError(f"{path}, line 1: missing column(s) {', '.join(missing)}")
    out = []
    for i, row in enumerate(rows, start=1):
        gender = "M" if (row.get("性别") or "").strip() in ("男", "M") else "F"
        out.append(
            Recipient(
                number=f"PROOF-{i:06d}",
                seq=i,
                name=row["姓名"].strip(),
                gender=gender,
                unit_name=row["单位名称"].strip(),
                address=row["单位地址"].strip() or None,
                postcode=row["单位邮编"].strip() or None,
                mobile=(row.get("手机") or "").strip() or None,
            )
        )
    return out


def proof_selection(recipients: list[Recipient], n: int = PROOF_PIECES) -> list[Recipient]:
    """The first few recipients plus the longest name and the longest address in the data."""
    chosen = recipients[: max(1, n - 2)]
    longest = [
        max(recipients, key=lambda r: len(r.name)),
        max(recipients, key=lambda r: len(r.address or "")),
    ]
    for r in longest:
        if r not in chosen:
            chosen.append(r)
    return chosen


def previews(pdf: Path, out: Path, prefix: str, pages: int) -> list[Path]:
    """PNG previews of the first pages (poppler's pdftoppm)."""
    if shutil.which("pdftoppm") is None:
        raise InputError("pdftoppm not found: install poppler-utils for PNG previews")
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
    kit: str = typer.Argument(..., help="Kit name in templates/ or a kit folder."),
    out: Path = typer.Option(..., "--out", help="Folder for the proof PDFs and PNG previews."),
    registry: Path | None = typer.Option(
        None, "--registry", help="CSV with 姓名,单位名称,单位地址,单位邮编."
    ),
    sample: int | None = typer.Option(None, "--sample", min=1, max=1000, help="Synthesise N recipients."),
) -> None:
    """Renders a proof of a kit: a few pieces (longest name and address included) and PNG previews."""
    if registry is not None and sample is not None:
        raise InputError("give --registry FILE or --sample N, not both")
    loaded = load_kit(kit)
    recipients = (
        proof_selection(read_registry(registry)) if registry else sample_recipients(sample or PROOF_PIECES)
    )
    out.mkdir(parents=True, exist_ok=True)
    if loaded.channel == "sms":
        lines = []
        for msg in render_sms(loaded, recipients):
            status = msg.error or f"{msg.length} chars, {msg.parts} part(s)"
            lines.append(f"{msg.number}\t{status}\t{msg.text}")
        (out / "sms.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        typer.echo("\n".join(lines))
        return
    envelopes, letters = out / "envelopes.pdf", out / "letters.pdf"
    result = render_letters(loaded, recipients, envelopes=envelopes, letters=letters)
    for failed in result.failed:
        typer.echo(f"skipped {failed.number}: {failed.error}", err=True)
    pngs = previews(envelopes, out, "envelope", 2) + previews(letters, out, "letter", loaded.letter_pages)
    typer.echo(
        f"kit {loaded.name} ({loaded.digest[:12]}): {len(result.rendered)} pieces -> {envelopes}, {letters}"
    )
    for png in pngs:
        typer.echo(f"preview {png}")


def register(app: typer.Typer) -> None:
    """Adds the `proof` command to the top-level app."""
    app.command("proof")(proof)
