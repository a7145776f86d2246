"""Campaigns: an audience, a kit, a channel, a rate card, a budget and a schedule."""
