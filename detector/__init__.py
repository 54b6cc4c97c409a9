"""GridSight runtime: cameras → observations → findings → incidents with evidence."""

__version__ = "0.1.0"
