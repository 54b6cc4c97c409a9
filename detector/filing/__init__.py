"""Incidents → cases → platform: cases and their lifecycle, the outbox and filer, platform adapters, deadlines."""
