from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from detector.config import Schedule, load_config
from detector.synthetic.demo_camera import demo_camera
from tests.conftest import REPO

SH = ZoneInfo("Asia/Shanghai")

GOOD = {
    "id": "cam-ok",
    "name": "ok",
    "source": {"url": "rtsp://10.0.0.1/stream1", "username_env": "CAM_USER", "password_env": "CAM_PASS"},
    "problems": ["09006"],
}


def _write(tmp_path: Path, cameras: list) -> Path:
    (tmp_path / "cams.yaml").write_text(yaml.safe_dump({"cameras": cameras}, allow_unicode=True))
    return tmp_path


def test_bundled_demo_yaml_is_the_embedded_demo_camera() -> None:
    loaded = load_config(REPO / "camera_config")
    assert loaded.errors == []
    assert loaded.cameras == [demo_camera()]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"cadence_s": 0}, "cameras.1.cadence_s", "from 0.5 (twice a second) to 3600 (once an hour), got 0"),
        ({"location": {"grid_code": "1101-bad"}}, "cameras.1.location.grid_code", "pattern"),
        ({"location": {"division_code": "11"}}, "cameras.1.location.division_code", "pattern"),
        (
            {"zones": [{"name": "z", "purpose": "wall", "polygon": [[0, 0], [1.5, 0], [1, 1]]}]},
            "cameras.1.zones.0.polygon.1.0",
            "less than",
        ),
        (
            {"zones": [{"name": "z", "purpose": "moon", "polygon": [[0, 0], [1, 0], [1, 1]]}]},
            "cameras.1.zones.0.purpose",
            "no_vending",
        ),
        ({"problems": ["99999"]}, "cameras.1.problems", "unknown problem"),
        ({"source": {"url": "rtsp://admin:secret@10.0.0.2/s"}}, "cameras.1.source.url", "password_env"),
        ({"rules": {"09006": {"schedule": "night"}}}, "cameras.1.rules.09006.schedule", "no schedule named 'night'"),
        ({"colour": "red"}, "cameras.1.colour", "Extra inputs"),
    ],
)
def test_a_broken_camera_is_reported_by_file_camera_and_field_and_the_others_load(
    tmp_path: Path, change: dict, field: str, words: str
) -> None:
    bad = {**GOOD, "id": "cam-bad", **change}
    _write(tmp_path, [GOOD, bad])
    loaded = load_config(tmp_path)
    assert [c.id for c in loaded.cameras] == ["cam-ok"]
    assert len(loaded.errors) == 1
    err = loaded.errors[0]
    assert err.file.endswith("cams.yaml")
    assert err.camera == "cam-bad"
    assert err.field.startswith(field)
    assert words in err.message or words in str(err)


def test_duplicate_ids_and_unreadable_yaml_are_errors(tmp_path: Path) -> None:
    _write(tmp_path, [GOOD, GOOD])
    (tmp_path / "broken.yaml").write_text("cameras: [ {id: x")
    loaded = load_config(tmp_path)
    msgs = [str(e) for e in loaded.errors]
    assert any("broken.yaml" in m for m in msgs)
    assert any("duplicate id" in m for m in msgs)
    assert len(loaded.cameras) == 1


def test_config_check_cli_names_file_camera_and_field(tmp_path: Path) -> None:
    _write(tmp_path, [GOOD, {**GOOD, "id": "cam-2", "cadence_s": -1}])
    (tmp_path / "settings.yaml").write_text("retention_days: -3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "detector.cli", "config", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert re.search(r"cams\.yaml:\d+:\d+: camera cam-2: cameras\.1\.cadence_s: ", proc.stderr)
    assert "settings.yaml:1:17: retention_days: " in proc.stderr
    ok = subprocess.run([sys.executable, "-m", "detector.cli", "config", "check", str(REPO / "camera_config")])
    assert ok.returncode == 0


@pytest.mark.parametrize(
    ("when", "active"),
    [
        (datetime(2026, 3, 2, 23, 0, tzinfo=SH), True),  # Monday 23:00, window starts Monday
        (datetime(2026, 3, 3, 5, 59, tzinfo=SH), True),  # Tuesday early: still Monday's window
        (datetime(2026, 3, 3, 6, 0, tzinfo=SH), False),
        (datetime(2026, 3, 7, 23, 0, tzinfo=SH), False),  # Saturday: not a listed day
        (datetime(2026, 3, 8, 2, 0, tzinfo=SH), False),  # Sunday early belongs to Saturday
        (datetime(2026, 3, 2, 15, 0, tzinfo=ZoneInfo("UTC")), True),  # = 23:00 in Shanghai
    ],
)
def test_night_schedule_crossing_midnight(when: datetime, active: bool) -> None:
    night = Schedule.model_validate(
        {"windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "06:00"}]}
    )
    assert night.active(when) is active


def test_a_camera_that_files_on_its_own_needs_division_and_grid_codes(tmp_path: Path) -> None:
    auto = {**GOOD, "id": "cam-auto", "filing": {"09006": {"mode": "auto"}}}
    review = {**GOOD, "id": "cam-review"}  # 09006 files after an operator's confirmation
    placed = {**auto, "id": "cam-placed", "location": {"division_code": "110107", "grid_code": "110107001002003"}}
    loaded = load_config(_write(tmp_path, [auto, review, placed]))
    assert [c.id for c in loaded.cameras] == ["cam-review", "cam-placed"]
    [err] = loaded.errors
    assert (err.camera, err.field) == ("cam-auto", "cameras.0.location")
    assert "location.division_code and location.grid_code" in err.message and "00000009006" in err.message
    assert "mode: review" in err.message  # the way out, said
    [warning] = loaded.warnings
    assert (warning.camera, warning.field) == ("cam-review", "cameras.1.location") and "review only" in warning.message
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", "config", "check", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 1 and "warning: " in out.stderr
    assert "2 camera(s) valid, 1 error(s), 1 warning(s)" in out.stdout
