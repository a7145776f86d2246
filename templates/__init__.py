"""The campaign kits shipped with Outreach (one folder each, with a kit.toml)."""

from pathlib import Path


def kits_dir() -> Path:
    """The folder holding the shipped kits."""
    return Path(__file__).resolve().parent
