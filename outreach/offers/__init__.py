"""Merchant offers in the letters: ad slots and their bookings per period, redemption codes, redemptions."""
