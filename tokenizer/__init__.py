"""Bulk encoding into sharded discrete codes, text tokens and readers (DESIGN §6)."""
