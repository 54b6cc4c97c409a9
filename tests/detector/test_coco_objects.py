"""The bundled people-and-vehicles model (models/coco-objects) on real frames, and the person
cue it gives the vending rule on a street scene: a real person beside new goods is a vendor,
a bollard beside them is not, a person standing alone is no goods."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from detector.analysis.occupancy import LABEL, PERSON, VENDING, OccupancyAnalyzer, OccupancyParams
from detector.analysis.onnx_detector import ObjectDetector, OnnxModel
from detector.incidents.privacy import redact
from detector.models.deployments import ModelStore
from detector.types import Frame
from tests.detector.test_occupancy import OBJ, STEP_S, T0, Scene, _hits, _iou, _norm

REPO = Path(__file__).resolve().parents[2]
#: the man standing in the corridor clip at 30 s, boxed by hand (normalised xyxy)
CORRIDOR_PERSON = (0.50, 0.0, 0.71, 0.87)


@pytest.fixture(scope="module")
def coco() -> OnnxModel:
    store = ModelStore(REPO / "models")
    return OnnxModel(store.path("coco-objects", store.default_version("coco-objects")))


def _frame_at(path: Path, t: float) -> np.ndarray:
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            if f.time >= t:
                return f.to_ndarray(format="bgr24")
    raise AssertionError(f"{path} is shorter than {t} s")


@pytest.fixture
def corridor(shared_video: Callable[[str], Path]) -> np.ndarray:
    return _frame_at(shared_video("one-by-one-person-detection.mp4"), 30.0)


def test_the_bundled_model_finds_the_man_in_the_corridor_and_no_one_among_the_bottles(
    coco: OnnxModel, corridor: np.ndarray, shared_video: Callable[[str], Path]
) -> None:
    assert coco.manifest.weights is not None and coco.manifest.weights.licence == "Apache-2.0"
    people = coco.predict([corridor], classes=[PERSON])[0]
    assert len(people) == 1 and _iou(people.xyxy[0], CORRIDOR_PERSON) >= 0.8, people
    bottles = _frame_at(shared_video("bottle-detection.mp4"), 10.0)
    assert not len(coco.predict([bottles], classes=[PERSON, "bicycle", "motorcycle", "car"])[0])


@pytest.fixture
def person_sprite(coco: OnnxModel, corridor: np.ndarray) -> np.ndarray:
    """The corridor's man, cut out with a little wall around him, 96 px tall."""
    h, w = corridor.shape[:2]
    x0, y0, x1, y1 = (coco.predict([corridor], classes=[PERSON])[0].xyxy[0] * [w, h, w, h]).astype(int)
    crop = corridor[y0 : min(h, y1 + 8), max(0, x0 - 8) : min(w, x1 + 8)]
    scale = 96 / crop.shape[0]
    return cv2.resize(crop, (round(crop.shape[1] * scale), 96), interpolation=cv2.INTER_AREA)


def _paste(img: np.ndarray, sprite: np.ndarray, left: int, foot: int) -> np.ndarray:
    out = img.copy()
    h, w = sprite.shape[:2]
    out[foot - h : foot, left : left + w] = sprite
    return out


def _bollard(img: np.ndarray, left: int, foot: int) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (left, foot - 80), (left + 22, foot), (70, 70, 75), -1)
    cv2.rectangle(out, (left, foot - 66), (left + 22, foot - 58), (40, 200, 230), -1)  # reflective band
    return out


def _run(
    analyzer: OccupancyAnalyzer, goods: bool, beside: Callable[[np.ndarray], np.ndarray] | None, n: int = 24
) -> list:
    scene, out = Scene(seed=3), []
    for i in range(n):
        img = scene.render(boxes=(OBJ,) if goods and i >= 6 else ())
        if beside is not None and i >= 6:
            img = beside(img)
        out.append(analyzer.analyze(Frame("cam", i, T0 + timedelta(seconds=i * STEP_S), img)))
    return out


def _analyzer(coco: OnnxModel) -> OccupancyAnalyzer:
    detector = ObjectDetector(coco, {PERSON})
    return OccupancyAnalyzer(OccupancyParams(people=True), people=lambda f: detector.boxes(f, f"detector:{PERSON}"))


def _vending(results: list) -> bool:
    return any(lbl == VENDING for obs in results[-8:] for lbl in obs.labels)


def test_a_person_beside_new_goods_is_a_vendor(coco: OnnxModel, person_sprite: np.ndarray) -> None:
    results = _run(_analyzer(coco), True, lambda img: _paste(img, person_sprite, OBJ[2] + 24, OBJ[3]))
    assert _vending(results)
    vend = [b for obs in results[-4:] for b, lbl in zip(obs.xyxy, obs.labels, strict=True) if lbl == VENDING]
    assert vend and any(_iou(b, _norm(OBJ)) >= 0.5 for b in vend)


def test_goods_alone_or_beside_a_bollard_are_no_vendor(coco: OnnxModel) -> None:
    alone = _run(_analyzer(coco), True, None)
    assert any(_hits(obs, OBJ) for obs in alone[-4:]) and not _vending(alone)
    bollard = _run(_analyzer(coco), True, lambda img: _bollard(img, OBJ[2] + 24, OBJ[3]))
    assert any(_hits(obs, OBJ) for obs in bollard[-4:]) and not _vending(bollard)


def test_a_person_standing_still_alone_is_neither_goods_nor_a_vendor(
    coco: OnnxModel, person_sprite: np.ndarray
) -> None:
    results = _run(_analyzer(coco), False, lambda img: _paste(img, person_sprite, 300, 262))
    assert not any(lbl in (LABEL, VENDING) for obs in results for lbl in obs.labels)


def test_public_copies_pixelate_the_heads_of_detected_people(coco: OnnxModel, corridor: np.ndarray) -> None:
    person = coco.predict([corridor], classes=[PERSON])[0].xyxy
    whole = [(0.0, 0.0, 1.0, 1.0)]  # the problem's box covers him: only the head redaction hides him
    h, w = corridor.shape[:2]
    x0, y0, x1, y1 = (person[0] * [w, h, w, h]).astype(int)
    head = (slice(y0, y0 + (y1 - y0) // 5), slice(x0, x1))

    def change(img: np.ndarray) -> float:
        return float(np.abs(img[head].astype(int) - corridor[head].astype(int)).mean())

    plain, report = redact(corridor, whole)
    assert report.faces == 0 and change(plain) < 2  # seen from behind: no cascade finds his face
    hidden, report = redact(corridor, whole, [tuple(b) for b in person])
    assert report.heads == 1 and change(hidden) > 10
    body = (slice(y0 + (y1 - y0) // 2, y1), slice(x0, x1))
    assert np.array_equal(hidden[body], corridor[body])  # below the shoulders he stays as the problem shows him
