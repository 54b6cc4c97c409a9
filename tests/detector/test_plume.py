"""Smoke and fire count only where the box moved since the previous analysis (detector/analysis/plume.py):
real smoke one second later is kept, the car park's asphalt that the bundled detector calls smoke is not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detector.analysis.onnx_detector import ObjectDetector, OnnxModel
from detector.analysis.plume import PlumeCheck
from detector.config import BUNDLED_MODELS
from detector.models.deployments import ModelStore
from detector.types import Frame, Observations
from tests.conftest import SHARED_VIDEOS

SMOKE = SHARED_VIDEOS.parent / "smoke" / "images" / "train"
ASPHALT = (0.37, 0.0, 1.0, 1.0)  # where the bundled detector sees smoke in car-detection.mp4


def seconds(video: Path, *at: int) -> list[np.ndarray]:
    with av.open(str(video)) as c:
        out = {}
        for f in c.decode(video=0):
            if f.time is not None and (s := int(f.time)) in at and s not in out:
                out[s] = f.to_ndarray(format="bgr24")
    return [out[s] for s in at]


def labelled_smoke(name: str) -> tuple[np.ndarray, tuple[float, ...]]:
    [path] = SMOKE.glob(f"{name}_jpg.rf.*.jpg")
    label = path.parents[2] / "labels" / "train" / f"{path.stem}.txt"
    cls, cx, cy, w, h = map(float, label.read_text().split()[:5])
    assert int(cls) == 1  # smoke
    return cv2.imread(str(path)), (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def obs(*boxes: tuple[tuple[float, ...], str]) -> Observations:
    return Observations.build([b for b, _ in boxes], [0.6] * len(boxes), [label for _, label in boxes])


@pytest.fixture
def car_park(shared_video: Callable[[str], Path]) -> Path:
    return shared_video("car-detection.mp4")


def test_a_plume_that_drifts_is_kept_from_the_second_look() -> None:
    if not SMOKE.exists():
        pytest.skip(f"{SMOKE} not present")
    check = PlumeCheck()
    first, box = labelled_smoke("newsmoke2_mp4-45")
    later, _ = labelled_smoke("newsmoke2_mp4-46")  # one second later
    assert len(check.keep_moving(first, obs((box, "detector:smoke")))) == 0  # nothing to compare with yet
    assert check.keep_moving(later, obs((box, "detector:smoke"), (box, "detector:garbage"))).labels == (
        "detector:smoke", "detector:garbage")  # fmt: skip


def test_the_asphalt_stays_put_even_when_the_camera_re_exposes(car_park: Path) -> None:
    # 11 → 21 s: the car park as it was; 26 → 28 s: a white car drives in and the picture halves in brightness
    a11, a21, a26, a28 = seconds(car_park, 11, 21, 26, 28)
    assert a28.mean() < 0.6 * a26.mean()
    for before, now in ((a11, a21), (a26, a28)):
        check = PlumeCheck()
        check.keep_moving(before, obs())
        kept = check.keep_moving(now, obs((ASPHALT, "detector:smoke"), (ASPHALT, "detector:fire"),
                                          ((0.1, 0.1, 0.2, 0.2), "detector:garbage")))  # fmt: skip
        assert kept.labels == ("detector:garbage",)  # other classes are never checked


def test_the_bundled_detector_reports_no_smoke_on_the_car_park_after_its_first_analysis(car_park: Path) -> None:
    store = ModelStore(BUNDLED_MODELS)
    model = OnnxModel(store.path("gridsight-detector", store.default_version("gridsight-detector") or ""))
    detector = ObjectDetector(model)
    images = seconds(car_park, 1, 11, 21)
    raw = model.predict(images, classes={"smoke"})
    assert all(len(r) for r in raw), "the model no longer calls the asphalt smoke: this test shows nothing"
    seen = [detector.analyze(Frame("car-park", i, datetime.now(UTC), im)) for i, im in enumerate(images)]
    assert [sum(label == "detector:smoke" for label in s.labels) for s in seen] == [0, 0, 0]
