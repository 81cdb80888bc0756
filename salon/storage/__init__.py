"""Salon's SQL plumbing: engines, the in-loop SQLite driver, coalesced reads."""
