"""Training loop for GridSight models (needs requirements-train.txt)."""
