"""`gridsight cameras snapshot`: one full-resolution frame of a configured camera, as JPEG."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from detector.cli import main
from tests.conftest import street_camera, write_config


def test_snapshot_writes_a_full_resolution_frame_of_a_video_camera(short_street: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path, [street_camera(short_street)])
    out = tmp_path / "street.jpg"
    assert main(["cameras", "snapshot", "street-1", "--out", str(out), "--config", str(cfg)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (360, 640, 3)
    assert image.std() > 10  # a picture of the street, not a blank frame


@pytest.mark.parametrize(
    ("camera", "rc", "says"),
    [("north-9", 2, "camera north-9: no such camera"), ("gone-1", 1, "camera gone-1: cannot read")],
)
def test_unknown_camera_or_dead_source_fails_naming_the_camera(
    short_street: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], camera: str, rc: int, says: str
) -> None:
    gone = street_camera(tmp_path / "missing.mp4", "gone-1")
    cfg = write_config(tmp_path, [street_camera(short_street), gone])
    out = tmp_path / "x.jpg"
    assert main(["cameras", "snapshot", camera, "--out", str(out), "--config", str(cfg)]) == rc
    assert says in capsys.readouterr().err
    assert not out.exists()
