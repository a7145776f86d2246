"""Outreach: a campaign engine for union letters (俏佳人 business letters) and SMS outreach."""

__version__ = "0.1.0"
