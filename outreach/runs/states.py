"""Run and batch states in words people read, and batch states as people type them (中文 or English).

The one place for these labels: the CLI, the print-shop portal and the planners' pages show states from here.
"""

from __future__ import annotations

from outreach.errors import InputError
from outreach.i18n import N_, _
from outreach.runs.models import BATCH_STATES

RUN_STATE_LABELS = {
    "waiting": N_("waiting for approval"),
    "rendering": N_("rendering"),
    "assembling": N_("assembling batches"),
    "done": N_("done (all batches ready)"),
    "cancelled": N_("cancelled by a person"),
    "stalled": N_("stalled (needs a person)"),
}

BATCH_STATE_LABELS = {
    "ready": N_("state: ready"),
    "downloaded": N_("state: downloaded"),
    "printed": N_("state: printed"),
    "mailed": N_("state: mailed"),
}

# What print-shop staff also write for a state (besides its label and its English name).
_BATCH_STATE_WORDS = {
    "下载": "downloaded",
    "已下载": "downloaded",
    "印刷": "printed",
    "已印刷": "printed",
    "印制": "printed",
    "已印制": "printed",
    "寄出": "mailed",
    "已寄出": "mailed",
    "交寄": "mailed",
    "已交寄": "mailed",
    "已交邮": "mailed",
}
_RETURNED_WORDS = ("退回", "已退回", "退件", "returned")


def run_state_label(state: str) -> str:
    """A run state in words people read."""
    return _(RUN_STATE_LABELS[state]) if state in RUN_STATE_LABELS else state


def batch_state_label(state: str) -> str:
    """A batch state in words people read."""
    return _(BATCH_STATE_LABELS[state]) if state in BATCH_STATE_LABELS else state


def parse_batch_state(text: str) -> str:
    """The batch state a person means: 'mailed', '已寄出', '寄出', its label...; InputError otherwise."""
    word = text.strip()
    if word.lower() in BATCH_STATES:
        return word.lower()
    if word in _BATCH_STATE_WORDS:
        return _BATCH_STATE_WORDS[word]
    for state in BATCH_STATES:
        if word == batch_state_label(state):
            return state
    if word.lower() in _RETURNED_WORDS:
        raise InputError(
            _("returned letters are recorded by piece number: outreach batch returned R000001-0000042 ...")
        )
    raise InputError(
        _(
            "a print shop reports one of {choices}, not {value}",
            choices="、".join(batch_state_label(s) for s in BATCH_STATES[1:]),
            value=text,
        )
    )
