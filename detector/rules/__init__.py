"""Observations → findings: each problem type (taxonomy), its rules, and persistence over time."""
