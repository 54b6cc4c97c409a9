"""Every configuration error names its file, line and column, and all of them come in one pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from detector.config import ConfigError, load_config

CAMERA = """\
cameras:
  - id: cam-1
    name: 东门
    source:
      url: rtsp://10.0.0.1/s
    problems: ["09006"]
"""


def errors_of(tmp_path: Path, files: dict[str, str]) -> list[ConfigError]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return load_config(tmp_path).errors


def only(errors: list[ConfigError]) -> tuple[str, int | None, int | None, str, str]:
    [e] = errors
    return Path(e.file).name, e.line, e.column, e.field, e.message


@pytest.mark.parametrize(
    ("text", "where", "field", "words"),
    [
        # a value of the wrong type: its value
        (CAMERA + "    cadence_s: fast\n", (7, 16), "cameras.0.cadence_s", "valid number"),
        # a field that does not exist: its key
        (CAMERA + "    colour: red\n", (7, 5), "cameras.0.colour", "Extra inputs"),
        # a missing field: the camera that lacks it
        (CAMERA.replace("    name: 东门\n", ""), (2, 5), "cameras.0.name", "Field required"),
        # deep in lists: the very number
        (
            CAMERA + "    zones:\n      - {name: z, purpose: wall, polygon: [[0, 0], [1.5, 0], [1, 1]]}\n",
            (8, 53), "cameras.0.zones.0.polygon.1.0", "less than or equal to 1",
        ),
        # a check across fields names the field it is about
        (
            CAMERA + '    rules:\n      "09006": {schedule: night}\n',
            (8, 27), "cameras.0.rules.09006.schedule", "no schedule named 'night'",
        ),
        (CAMERA.replace('["09006"]', '["09006", "99999"]'), (6, 15), "cameras.0.problems", "unknown problem codes"),
        (CAMERA.replace("rtsp://10.0.0.1/s", "rtsp://admin:pw@10.0.0.1/s"), (5, 12), "cameras.0.source.url", "_env"),
        (
            CAMERA.replace("  - id: cam-1\n", '  - id: cam-1\n    filing: {"09006": {mode: auto}}\n'),
            (2, 5), "cameras.0.location", "location.division_code and location.grid_code",
        ),
        ("cameras:\n  id: cam-1\n", (2, 3), "cameras", "expected a list of cameras"),
        ("cameras:\n  - id: cam-1\n    name: [unclosed\n", (4, 1), "(file)", "expected ',' or ']'"),
    ],
)  # fmt: skip
def test_a_camera_error_points_at_its_line_and_column(
    tmp_path: Path, text: str, where: tuple[int, int], field: str, words: str
) -> None:
    name, line, column, got_field, message = only(errors_of(tmp_path, {"cams.yaml": text}))
    assert (name, (line, column), got_field) == ("cams.yaml", where, field)
    assert words in message


@pytest.mark.parametrize(
    ("text", "where", "field", "words"),
    [
        ("retention_days: -3\n", (1, 17), "retention_days", "greater than 0"),
        ("api_port: 8080\nlog_level: LOUD\n", (2, 12), "log_level", "'DEBUG'"),
        # a union member: the tag in pydantic's location is not in the file, the field is
        ("platform:\n  type: http_json\n  base_url: ftp://x\n", (3, 13), "platform.http_json.base_url", "^https?://"),
        ("filing:\n  retry_min_s: 1\n  retry_mx_s: 5\n", (3, 3), "filing.retry_mx_s", "Extra inputs"),
        ("taxonomy: local/taxonomy.yaml\n", (1, 11), "taxonomy", "taxonomy.yaml"),
        ("- just\n- a list\n", (1, 1), "(root)", "must be a mapping"),
    ],
)
def test_a_settings_error_points_at_its_line_and_column(
    tmp_path: Path, text: str, where: tuple[int, int], field: str, words: str
) -> None:
    name, line, column, got_field, message = only(errors_of(tmp_path, {"settings.yaml": text, "cams.yaml": CAMERA}))
    assert (name, (line, column), got_field) == ("settings.yaml", where, field)
    assert words in message


def test_one_check_reports_every_error_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "settings.yaml").write_text("retention_days: 0\nlog_level: LOUD\n")
    (tmp_path / "a.yaml").write_text(CAMERA + "    cadence_s: 0\n    colour: red\n")
    two_wrongs = CAMERA.replace("    name: 东门\n", "").replace('["09006"]', '["99999"]')
    (tmp_path / "b.yaml").write_text(two_wrongs.replace("cam-1", "cam-2") + CAMERA.replace("cameras:\n", ""))
    (tmp_path / "c.yaml").write_text("cameras: [ {id: x\n")
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "config", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    lines = sorted(line.replace(str(tmp_path) + "/", "") for line in proc.stderr.splitlines())
    assert [line.split(": ")[0] for line in lines] == [
        "a.yaml:7:16",  # cadence_s
        "a.yaml:8:5",  # colour
        "b.yaml:2:5",  # cam-2 has no name…
        "b.yaml:5:15",  # …and an unknown problem, in the same pass
        "b.yaml:6:9",  # cam-1 again: also in a.yaml
        "c.yaml:2:1",  # not YAML
        "settings.yaml:1:17",
        "settings.yaml:2:12",
    ]
    assert "b.yaml:6:9: camera cam-1: cameras.1.id: duplicate id, also in" in "\n".join(lines)
    assert "a.yaml:7:16: camera cam-1: cameras.0.cadence_s: cadence_s is the seconds" in "\n".join(lines)
    assert "0 camera(s) valid, 8 error(s)" in proc.stdout


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("0.2", "from 0.5 (twice a second) to 3600 (once an hour), got 0.2"),
        ("7200", "got 7200"),
        (".nan", "got nan"),
    ],
)
def test_cadence_out_of_bounds_says_the_bounds_and_what_they_mean(tmp_path: Path, value: str, words: str) -> None:
    *_, message = only(errors_of(tmp_path, {"cams.yaml": CAMERA + f"    cadence_s: {value}\n"}))
    assert message.startswith("cadence_s is the seconds of video time between analyses") and words in message


@pytest.mark.parametrize(
    ("value", "preset", "words"),
    [
        ("3", "3", None),  # the number written on the camera's preset list
        ('"03"', "03", None),
        ("east-gate", "east-gate", None),
        ("1.10", None, 'quote it, e.g. ptz_preset: "1.1"'),  # YAML already dropped the 0
        ("yes", None, "quote it"),
    ],
)
def test_ptz_preset_is_text(tmp_path: Path, value: str, preset: str | None, words: str | None) -> None:
    loaded = load_config(_one(tmp_path, CAMERA + f"    ptz_preset: {value}\n"))
    if preset is not None:
        assert loaded.errors == [] and loaded.cameras[0].ptz_preset == preset
    else:
        assert only(loaded.errors)[3] == "cameras.0.ptz_preset" and words in loaded.errors[0].message


def _one(tmp_path: Path, text: str) -> Path:
    (tmp_path / "cams.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_a_filing_claim_shorter_than_a_send_is_an_error(tmp_path: Path) -> None:
    settings = "platform: {type: http_json, base_url: 'http://127.0.0.1:9', timeout_s: 10}\nfiling: {lease_s: 5}\n"
    name, line, column, field, message = only(errors_of(tmp_path, {"settings.yaml": settings, "cameras.yaml": CAMERA}))
    assert (name, line, column, field) == ("settings.yaml", 2, 19, "filing.lease_s")
    assert "5 s must be above platform.timeout_s (10 s)" in message
