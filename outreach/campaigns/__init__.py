"""Campaigns: an audience, a kit, a channel, a rate card, a budget and a schedule.

service: look-ups by id or name, the name rule, the approval estimate (reach, cost, glyph problems), approval.
schemas: what the service gives the edges. names: the rule for names people type. schedule: the tick.
"""
