"""Structured logging: one line per event, JSON by default, text with the same fields.

JSON lines carry `ts` as ISO 8601 with its time zone (UTC) and never terminal colour codes
(uvicorn adds a coloured copy of its message as `color_message`: dropped). Text lines are
for people at a terminal: the message, then every field of the event as `key=value`.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

#: record attributes that are logging's own, not an event's fields
_NOT_FIELDS = frozenset({*RESERVED_ATTRS, "color_message", "message", "asctime", "taskName"})


class TextFormatter(logging.Formatter):
    """`2026-12-03T09:51:04.123+00:00 INFO    detector.runtime.app: case status case=3 status=filed`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _NOT_FIELDS)
        return f"{line} {fields}" if fields else line


def configure(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level"},
                timestamp="ts",
                reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            )
        )
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access", "libav", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
