"""Channels: how a campaign's frozen pieces leave — printed letters, SMS gateway files, live SMS.

A channel turns one batch of frozen pieces into a named result per piece (state, reason, parts, cost basis)
and into the batch's files; it says at which piece state a piece is charged (`charge_on`). The run, the
ledger and the batch files ask the channel and never branch on its name. A channel uses the renderer and
storage, never the runs' orchestration or the database.

One word names a channel everywhere: `letter` or `sms` (campaigns, audiences, suppressions, tickets). The old
word `mail` is still taken on input and means `letter`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from outreach.errors import InputError
from outreach.i18n import _
from outreach.storage import Storage, digest_and_size

if TYPE_CHECKING:
    from outreach.render import Kit, Recipient

ChannelName = Literal["letter", "sms"]
CHANNEL_NAMES: tuple[ChannelName, ...] = ("letter", "sms")
# Words people typed before there was one word; taken on input, never stored.
ALIASES: Mapping[str, ChannelName] = {"mail": "letter"}

# What a channel can say of a piece, in the order a piece moves through them. `failed` may follow any.
# rendered: its file is made (print, gateway file); submitted: a gateway took it (`message_id` set);
# delivered: the gateway's receipt says it arrived.
ResultState = Literal["rendered", "submitted", "delivered", "failed"]
PROGRESS: tuple[str, ...] = ("pending", "rendered", "submitted", "delivered")

# What a batch records of each file: {"key": storage key, "sha256": hex digest, "bytes": size}.
FileFacts = dict[str, object]


def channel_word(text: str) -> ChannelName:
    """The one word for a channel from what a person typed (`letter`, `sms`, or the old `mail`)."""
    word = text.strip().lower()
    word = ALIASES.get(word, word)
    for name in CHANNEL_NAMES:
        if word == name:
            return name
    raise InputError(
        _("channel must be one of {choices}, not {value}", choices=", ".join(CHANNEL_NAMES), value=text)
    )


def charged_states(charge_on: str) -> tuple[str, ...]:
    """The piece states that carry a charge for a channel that charges at `charge_on`."""
    return PROGRESS[PROGRESS.index(charge_on) :]


@dataclass(frozen=True, slots=True)
class PieceResult:
    """What a channel did with one piece; `number` is the printed piece number."""

    number: str
    state: ResultState
    reason: str | None = None
    error_code: str | None = None
    pages: int | None = None
    parts: int | None = None
    message_id: str | None = None
    # When a live gateway took the message (its answer came): the consent evidence's submitted time.
    at: datetime | None = None

    @property
    def units(self) -> int:
        """The cost basis: billed SMS parts, or one for a letter."""
        return self.parts or 1


@dataclass(frozen=True, slots=True)
class Receipt:
    """A gateway's later word on a submitted piece: delivered, or failed with the gateway's error code."""

    message_id: str
    state: Literal["delivered", "failed"]
    error_code: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BatchFolder:
    """Where one batch's files go: a storage and the batch's key prefix (`run-000012/batch-0003`)."""

    storage: Storage
    prefix: str

    def key(self, name: str) -> str:
        """The storage key of one of the batch's files."""
        return f"{self.prefix}/{name}"

    def put(self, path: Path) -> FileFacts:
        """Stores a local file among the batch's files; its key, SHA-256 and size (hashed locally)."""
        key = self.key(path.name)
        self.storage.put(key, path)
        with path.open("rb") as f:
            sha256, size = digest_and_size(f)
        return {"key": key, "sha256": sha256, "bytes": size}

    def describe(self, name: str) -> FileFacts:
        """The facts of a stored file, read back (after a crash between storing it and recording it)."""
        key = self.key(name)
        with self.storage.open(key) as stream:
            sha256, size = digest_and_size(stream)
        return {"key": key, "sha256": sha256, "bytes": size}


@dataclass
class BatchOutput:
    """What a channel made of a batch: a result per piece and the files it stored."""

    results: list[PieceResult] = field(default_factory=list)
    files: dict[str, FileFacts] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """A piece as a batch's manifest lists it (only what is printed)."""

    seq: int
    number: str
    name: str
    unit_name: str
    address: str | None
    postcode: str | None
    pages: int | None
    parts: int | None


class Channel(Protocol):
    """One way out for a campaign's pieces."""

    name: ChannelName
    # The piece state at which a piece is charged: rendered for print, submitted for a live gateway.
    charge_on: str
    # Whether pieces keep the recipient's mobile (never for print: a print shop sees only what is printed).
    keeps_mobile: bool
    # The files `deliver` stores for each batch, by name.
    delivery_files: tuple[str, ...]

    def batch_size(self, requested: int) -> int:
        """Pieces per batch for a campaign that asks for `requested`."""

    def max_units(self, kit: Kit) -> int:
        """Cost units one piece of this kit can take at most (what a reservation must cover)."""

    def deliver(
        self,
        kit: Kit,
        recipients: Sequence[Recipient],
        *,
        context: Mapping[str, object],
        folder: BatchFolder,
        workdir: Path,
    ) -> BatchOutput:
        """Turns one batch's frozen pieces into a result per piece and the batch's stored files."""

    def manifest(self, rows: Sequence[ManifestRow]) -> tuple[Sequence[str], list[Sequence[object]]] | None:
        """The batch's manifest (header, rows) of its delivered pieces, or None if the channel has none."""

    def ticket_lines(self, kit: Kit, *, pieces: int) -> dict[str, str | int]:
        """The job ticket's production lines for this channel (envelope, paper, fold, send window...)."""


_REGISTRY: dict[str, Channel] = {}


def get_channel(name: str) -> Channel:
    """The channel a campaign or kit names (`letter`, `sms`, or the old `mail`).

    SMS goes through the live gateway when one is configured (OUTREACH_SMS_GATEWAY), else into gateway files.
    """
    word = channel_word(name)
    key: str = word
    if word == "sms":
        from outreach.settings import get_settings

        if get_settings().sms_gateway:
            key = "sms-live"
    if key not in _REGISTRY:
        # Imported on first use: the letter channel pulls in ReportLab, which a CLI listing never needs.
        if key == "letter":
            from outreach.channels.letter import LetterChannel

            _REGISTRY[key] = LetterChannel()
        elif key == "sms-live":
            from outreach.channels.sms_live import SmsLiveChannel

            _REGISTRY[key] = SmsLiveChannel()
        else:
            from outreach.channels.sms_files import SmsFilesChannel

            _REGISTRY[key] = SmsFilesChannel()
    return _REGISTRY[key]
