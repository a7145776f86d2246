"""The SMS gateway-file channel: a batch of pieces becomes one upload file (mobile, text, parts, piece) for
the union's SMS gateway; a piece is charged once its message is in the file, by its billed parts."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

from outreach.channels import BatchFolder, BatchOutput, ChannelName, ManifestRow, PieceResult
from outreach.render import Kit, Recipient, SmsMessage, render_sms, sms_parts
from outreach.settings import get_settings

GATEWAY_FILE = "sms.csv"
GATEWAY_HEADER = ("mobile", "content", "parts", "piece")


class SmsBase:
    """What the gateway-file and the live SMS channel share: how big a batch is, what one message can cost,
    no manifest (nothing is printed; the batch's own file lists its messages) and the job ticket's lines."""

    def batch_size(self, requested: int) -> int:
        """At most what the settings allow per batch (OUTREACH_SMS_GATEWAY_BATCH: the gateway's upload; a live
        batch's calls are split to the gateway's own size)."""
        return min(requested, get_settings().sms_gateway_batch)

    def max_units(self, kit: Kit) -> int:
        """Parts the kit's longest allowed message is billed as."""
        return sms_parts("x" * kit.sms_max_length)

    def manifest(self, rows: Sequence[ManifestRow]) -> tuple[Sequence[str], list[Sequence[object]]] | None:
        """None: no print shop sees an SMS batch, and its file is its own list."""
        return None

    def ticket_lines(self, kit: Kit, *, pieces: int) -> dict[str, str | int]:
        """The hours the gateway may send; nothing is printed."""
        return {
            "envelope": "-",
            "envelope_pages": 0,
            "paper": "-",
            "colours": "-",
            "bleed": "-",
            "fold": "-",
            "insert_order": "-",
            "send_window": sms_window(),
        }


class SmsFilesChannel(SmsBase):
    """SMS texts as gateway upload files (the union uploads them; live sending is another channel)."""

    name: ChannelName = "sms"
    # The file is what the union hands to the gateway, as the PDFs are what a print shop is handed.
    charge_on: str = "rendered"
    keeps_mobile: bool = True
    delivery_files: tuple[str, ...] = (GATEWAY_FILE,)

    def deliver(
        self,
        kit: Kit,
        recipients: Sequence[Recipient],
        *,
        context: Mapping[str, object],
        folder: BatchFolder,
        workdir: Path,
    ) -> BatchOutput:
        """Composes each message and stores the batch's gateway file (refused messages are left out)."""
        messages = render_sms(kit, recipients, context=context)
        path = workdir / GATEWAY_FILE
        write_gateway_csv(path, [m for m in messages if m.error is None])
        output = BatchOutput(files={GATEWAY_FILE: folder.put(path)})
        output.results.extend(
            PieceResult(m.number, "failed", reason=m.error)
            if m.error
            else PieceResult(m.number, "rendered", parts=m.parts)
            for m in messages
        )
        return output


def sms_window() -> str:
    """The hours a gateway may send a batch, as printed on the ticket."""
    s = get_settings()
    return f"{s.sms_send_start_hour:02d}:00-{s.sms_send_end_hour:02d}:00 {s.timezone}"


def write_gateway_csv(path: Path, messages: Sequence[SmsMessage]) -> None:
    """Writes an SMS gateway upload: one row per message, number and text (UTF-8, header row)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(GATEWAY_HEADER)
        for m in messages:
            out.writerow([m.mobile, m.text, m.parts, m.number])
