"""Analyzers: frame in, observations out. Each is enabled per camera."""
