"""The ptz block and the patrol list of a camera: what loads, what each stop's view is, and errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.config import load_config

DOME = """\
cameras:
  - id: dome-1
    name: 十字路口球机
    source: {url: "rtsp://10.0.0.7/main"}
    cadence_s: 5
    problems: ["09006", "09001"]
    zones:
      - {name: walk, purpose: no_vending, polygon: [[0, 0], [1, 0], [1, 1]]}
    rules:
      "09006": {min_score: 0.4}
    ptz: {host: 10.0.0.7, port: 8000, username_env: DOME_USER, password_env: DOME_PASS, manual_quiet_s: 120}
    patrol:
      - {preset: 1, dwell_s: 60}
      - preset: "2"
        dwell_s: 30
        problems: ["09006"]
        zones:
          - {name: gate, purpose: no_vending, polygon: [[0, 0], [0.5, 0], [0.5, 0.5]]}
        rules:
          "09006": {min_area: 0.01}
"""


def load(tmp_path: Path, text: str):
    (tmp_path / "cameras.yaml").write_text(text, encoding="utf-8")
    return load_config(tmp_path)


def test_a_patrolling_camera_loads_and_each_stop_is_a_camera_view_keyed_by_its_preset(tmp_path: Path) -> None:
    loaded = load(tmp_path, DOME)
    assert loaded.errors == []
    [cam] = loaded.cameras
    assert cam.ptz is not None and (cam.ptz.port, cam.ptz.manual_quiet_s, cam.ptz.settle_s) == (8000, 120, 2.0)
    assert [(s.preset, s.dwell_s) for s in cam.patrol] == [("1", 60), ("2", 30)]  # 1 written bare: the text "1"
    one, two = (cam.at_stop(s) for s in cam.patrol)
    # stop 1 keeps the camera's zones, problems and rules
    assert (one.ptz_preset, [z.name for z in one.zones], one.problems) == ("1", ["walk"], ["09006", "09001"])
    assert one.rules["09006"].min_score == 0.4
    # stop 2 watches its own zone for one problem; its rule adds to the camera's
    assert (two.ptz_preset, [z.name for z in two.zones], two.problems) == ("2", ["gate"], ["09006"])
    assert (two.rules["09006"].min_score, two.rules["09006"].min_area) == (0.4, 0.01)
    assert two.patrol == [] and cam.ptz_preset is None


def test_a_camera_without_ptz_is_as_before(tmp_path: Path) -> None:
    text = DOME.split("    ptz:")[0]
    [cam] = load(tmp_path, text).cameras
    assert cam.ptz is None and cam.patrol == []


def _stop(extra: str) -> str:
    return DOME.replace("      - {preset: 1, dwell_s: 60}\n", extra)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (_stop('      - {preset: "2", dwell_s: 60}\n'), "cameras.0.patrol.1.preset", "preset '2' is already stop 0"),
        (_stop("      - {preset: 1, dwell_s: 0.5}\n"), "cameras.0.patrol.0.dwell_s", "1 to 3600, got 0.5"),
        (_stop("      - {preset: 1, dwell_s: 7200}\n"), "cameras.0.patrol.0.dwell_s", "1 to 3600"),
        (_stop("      - {preset: 1, dwell_s: 3}\n"), "cameras.0.patrol.0.dwell_s", "less than cadence_s (5 s)"),
        (_stop("      - {preset: 1.10, dwell_s: 60}\n"), "cameras.0.patrol.0.preset", 'quote it, e.g. preset: "1.1"'),
        (_stop('      - {preset: 1, problems: ["99999"]}\n'), "cameras.0.patrol.0.problems", "unknown problem codes"),
        (
            _stop('      - {preset: 1, problems: ["09001"], rules: {"09006": {min_score: 0.5}}}\n'),
            "cameras.0.patrol.0.rules.09006", "not watched at this preset",
        ),
        (_stop("      - {preset: 1, dwell: 60}\n"), "cameras.0.patrol.0.dwell", "Extra inputs"),
        (_stop("      - {preset: 1, view: {radius_m: 50}}\n"), "cameras.0.patrol.0.view.radius_m",
         "needs location.lon and location.lat"),
        (_stop("      - {preset: 1, view: {polygon: [[116.2, 39.9], [116.3, 39.9]]}}\n"),
         "cameras.0.patrol.0.view.polygon", "at least 3"),
        (_stop("      - {preset: 1, view: {}}\n"), "cameras.0.patrol.0.view", "give either polygon or radius_m"),
        (DOME.replace("    ptz: {host", "    ptz_: {host"), "cameras.0.ptz_", "Extra inputs"),
        (DOME.replace("    ptz: {host: 10.0.0.7, port: 8000,", "    ptz: {host: 10.0.0.7, port: 0,"),
         "cameras.0.ptz.port", "greater than or equal to 1"),
        (DOME.replace("    cadence_s: 5\n", "    cadence_s: 5\n    ptz_preset: 3\n"), "cameras.0.ptz_preset",
         "remove ptz_preset"),
    ],
)  # fmt: skip
def test_a_wrong_patrol_is_refused_naming_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    loaded = load(tmp_path, text)
    assert loaded.cameras == []
    assert [e.field for e in loaded.errors] == [field], loaded.errors
    assert words in loaded.errors[0].message and loaded.errors[0].line is not None


def test_a_patrol_needs_a_ptz_block(tmp_path: Path) -> None:
    text = "".join(line for line in DOME.splitlines(keepends=True) if not line.startswith("    ptz:"))
    [error] = load(tmp_path, text).errors
    assert error.field == "cameras.0.patrol" and "needs a ptz block" in error.message


def test_a_stop_may_have_a_view_of_its_own(tmp_path: Path) -> None:
    north = "[[116.20, 39.90], [116.21, 39.90], [116.21, 39.91]]"
    [cam] = load(tmp_path, _stop(f"      - {{preset: 1, view: {{polygon: {north}}}}}\n")).cameras
    assert cam.patrol[0].view is not None and cam.patrol[0].view.polygon == [(116.20, 39.90), (116.21, 39.90),
                                                                             (116.21, 39.91)]  # fmt: skip
    assert cam.patrol[1].view is None  # the camera's (none here)
