"""The print channel: a batch of pieces becomes an envelope PDF and a letter PDF in the same order, and a
manifest; a piece is charged once it is rendered (the print shop prints what it is handed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from outreach.channels import BatchFolder, BatchOutput, ChannelName, ManifestRow, PieceResult
from outreach.render import Kit, Recipient, render_letters

# How an A4 letter is folded to go into each envelope size (see outreach.render.marks.FOLDS).
FOLD_FOR_ENVELOPE = {
    "DL": "letter fold in three (99 mm panels)",
    "ZL": "letter fold in three (99 mm panels)",
    "B6": "fold in three, then in half",
    "C5": "fold in half (148.5 mm)",
    "C4": "flat, unfolded",
}
MANIFEST_HEADER = ("sequence", "piece", "name", "unit", "address", "postcode", "pages", "file")
ENVELOPES_FILE = "envelopes.pdf"
LETTERS_FILE = "letters.pdf"


class LetterChannel:
    """Print-ready letters for a print shop."""

    name: ChannelName = "letter"
    charge_on: str = "rendered"
    keeps_mobile: bool = False
    delivery_files: tuple[str, ...] = (ENVELOPES_FILE, LETTERS_FILE)

    def batch_size(self, requested: int) -> int:
        """A print batch is as big as the campaign asks."""
        return requested

    def max_units(self, kit: Kit) -> int:
        """A letter is one unit, whatever its pages."""
        return 1

    def deliver(
        self,
        kit: Kit,
        recipients: Sequence[Recipient],
        *,
        context: Mapping[str, object],
        folder: BatchFolder,
        workdir: Path,
    ) -> BatchOutput:
        """Renders the batch's envelopes and letters and stores both files."""
        envelopes, letters = workdir / ENVELOPES_FILE, workdir / LETTERS_FILE
        rendered = render_letters(kit, recipients, envelopes=envelopes, letters=letters, context=context)
        output = BatchOutput(files={path.name: folder.put(path) for path in (envelopes, letters)})
        output.results.extend(PieceResult(ok.number, "rendered", pages=ok.pages) for ok in rendered.rendered)
        output.results.extend(PieceResult(bad.number, "failed", reason=bad.error) for bad in rendered.failed)
        return output

    def manifest(self, rows: Sequence[ManifestRow]) -> tuple[Sequence[str], list[Sequence[object]]] | None:
        """Every printed piece in the order of both PDFs, so inserting can be checked by number."""
        return MANIFEST_HEADER, [
            (i, r.number, r.name, r.unit_name, r.address, r.postcode, r.pages, LETTERS_FILE)
            for i, r in enumerate(rows, start=1)
        ]

    def ticket_lines(self, kit: Kit, *, pieces: int) -> dict[str, str | int]:
        """Envelope, paper, colours, bleed, fold and insert order for the print shop."""
        w, h = kit.envelope_mm
        pw, ph = kit.paper_mm
        return {
            "envelope": f"{kit.envelope_size} {w:g}×{h:g} mm (GB/T 1416)",
            "envelope_pages": pieces * kit.envelope_pages,
            "paper": f"{kit.paper} {pw:g}×{ph:g} mm",
            "colours": "CMYK 4/4, fonts embedded",
            "bleed": "3 mm, crop marks outside the trim",
            "fold": FOLD_FOR_ENVELOPE.get(kit.envelope_size, "-"),
            "insert_order": (
                f"{LETTERS_FILE} pages {kit.letter_pages} per piece go into the envelope of the same piece, "
                f"same order as {ENVELOPES_FILE} (check the piece numbers)"
            ),
            "send_window": "-",
        }
