"""Findings → incidents: one per real problem under a stable case key, with its evidence (privacy-blurred)."""
