"""Checkpoint formats: the key table, reading and converting files, finding and fetching weights."""
