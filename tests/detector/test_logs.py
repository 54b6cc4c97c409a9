"""Log lines: JSON with a zoned ISO timestamp and no colour codes; text with the event's fields."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest

from detector import logs


@pytest.fixture
def emit(capsys):
    def emit(fmt: str) -> str:
        logs.configure("INFO", fmt)
        # as uvicorn logs: a coloured copy of the message rides along in `color_message`
        extra = {"case": 3, "status": "filed", "color_message": "\x1b[36mcase status\x1b[0m"}
        logging.getLogger("detector.test").info("case status", extra=extra)
        return capsys.readouterr().err.strip()

    yield emit
    logs.configure("INFO", "json")


def test_json_lines_have_a_zoned_timestamp_and_no_ansi_codes(emit) -> None:
    line = emit("json")
    record = json.loads(line)
    assert datetime.fromisoformat(record["ts"]).utcoffset() is not None
    assert "\x1b" not in line and "color_message" not in record
    assert (record["level"], record["message"], record["case"], record["status"]) == ("INFO", "case status", 3, "filed")


def test_text_lines_keep_the_fields(emit) -> None:
    line = emit("text")
    assert line.endswith("INFO    detector.test: case status case=3 status=filed")
    assert datetime.fromisoformat(line.split(" ", 1)[0]).utcoffset() is not None and "\x1b" not in line
