"""Non-motor vehicles parked in a no-parking zone (09010), through the whole pipeline.

A generated street, ten minutes at 1 fps, with real vehicles pasted in: a motorcycle cut
from a street photo of the garbage set parks inside the no-parking zone after one minute
and stays; a bicycle parks outside the zone. The bundled people-and-vehicles model sees
them; one 09010 incident opens, for the motorcycle only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pytest

from detector.analysis.onnx_detector import OnnxModel
from detector.models.deployments import ModelStore
from detector.synthetic.demo import StreetSpec, encode_atomically
from tests.conftest import REPO, write_config
from tests.detector.test_occupancy import Scene
from tests.support.replay import replay

pytestmark = pytest.mark.slow

PHOTOS = REPO.parent / "shared" / "datasets" / "garbage" / "images" / "valid"
#: (photo, normalised box) of a motorcycle and a bicycle the bundled model finds there
MOTORCYCLE = ("001192_jpg.rf.25a27f5348e865725592681972e6f5be.jpg", (0.57, 0.48, 0.79, 0.81))
BICYCLE = ("001247_jpg.rf.e0d29f376a31d2a00ed618c9685c0a45.jpg", (0.61, 0.29, 0.99, 0.70))
SPEC = StreetSpec(width=640, height=360, fps=1, duration_s=600, gop_s=10, stall_arrive_s=None)
ZONE = [[0.0, 0.55], [0.45, 0.55], [0.45, 1.0], [0.0, 1.0]]


def _sprite(photo: str, box: tuple[float, float, float, float], height: int) -> np.ndarray:
    path = PHOTOS / photo
    if not path.exists():
        pytest.skip(f"{path} not present (../shared/datasets/garbage)")
    img = cv2.imread(str(path))
    h, w = img.shape[:2]
    x0, y0, x1, y1 = (np.asarray(box) * [w, h, w, h]).astype(int)
    crop = img[y0:y1, x0:x1]
    return cv2.resize(crop, (round(crop.shape[1] * height / crop.shape[0]), height), interpolation=cv2.INTER_AREA)


def _frames(bike: np.ndarray, bicycle: np.ndarray) -> Iterator[np.ndarray]:
    scene = Scene(seed=5)
    for i in range(SPEC.frame_count):
        img = scene.render(passers=i % 3)
        if i >= 60:
            img[330 - bike.shape[0] : 330, 80 : 80 + bike.shape[1]] = bike
            img[330 - bicycle.shape[0] : 330, 430 : 430 + bicycle.shape[1]] = bicycle
        yield img


def test_a_motorcycle_parked_in_the_zone_opens_one_09010_and_a_bicycle_outside_nothing(tmp_path: Path) -> None:
    bike, bicycle = _sprite(*MOTORCYCLE, height=130), _sprite(*BICYCLE, height=150)
    store = ModelStore(REPO / "models")
    coco = OnnxModel(store.path("coco-objects", store.default_version("coco-objects")))
    frames = list(islice(_frames(bike, bicycle), 60, 70))
    seen = [set(coco.predict([f], classes=["bicycle", "motorcycle"])[0].labels) for f in frames]
    for label in ("detector:motorcycle", "detector:bicycle"):  # the pasted vehicles are seen
        assert sum(label in s for s in seen) >= len(frames) // 2, (label, seen)

    video = tmp_path / "parking.mp4"
    encode_atomically(_frames(bike, bicycle), video, SPEC)
    camera = {
        "id": "lane-1",
        "name": "非机动车道",
        "source": {"url": str(video), "loop": False, "start_time": "2026-03-02T10:00:00+08:00"},
        "cadence_s": 10,
        "zones": [{"name": "curb", "purpose": "no_parking", "polygon": ZONE}],
        "problems": ["09010"],
        "rules": {"09010": {"persistence": {"k": 4, "n": 6, "minutes": 3}, "clear_minutes": 1}},
    }
    cfg = write_config(tmp_path, [camera], log_level="WARNING")
    replay(cfg)
    with sqlite3.connect(tmp_path / "gridsight.db") as con:
        rows = con.execute("select problem_code, zone, state, box from incidents").fetchall()
    assert [(code, zone) for code, zone, _, _ in rows] == [("09010", "curb")], rows
