"""The hand-drawn boxes of bench/coco_objects_sheets.py and how that script matches detections to them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def sheets():
    spec = importlib.util.spec_from_file_location("coco_objects_sheets", BENCH / "coco_objects_sheets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_truth_file_is_well_formed(sheets) -> None:
    truth = json.loads(sheets.TRUTH.read_text())
    assert set(sheets.PHOTOS) <= set(truth)
    for frame, boxes in truth.items():
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            assert b["cls"] in sheets.VEHICLES | {"person"} and isinstance(b["ignore"], bool), (frame, b)
            assert 0 <= x0 < x1 and 0 <= y0 < y1, (frame, b)


def test_match_ignores_detections_on_ignored_boxes(sheets) -> None:
    truth = [
        {"cls": "person", "box": [0, 0, 10, 20], "ignore": False},
        {"cls": "person", "box": [100, 0, 200, 50], "ignore": True},  # a crowd
        {"cls": "car", "box": [0, 100, 50, 150], "ignore": False},
    ]
    cls = np.array(["person", "person", "person", "person", "truck"])
    xyxy = np.array(
        [
            [0, 0, 10, 19],  # the person
            [1, 0, 10, 20],  # a duplicate of it: FP
            [120, 10, 140, 40],  # inside the crowd: ignored
            [300, 0, 310, 10],  # background: FP
            [0, 100, 50, 150],  # the car, as a truck
        ],
        float,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    s, tp, n = sheets.match(truth, cls, xyxy, scores, {"person"})
    assert n == 1 and s.tolist() == [0.9, 0.8, 0.6] and tp.tolist() == [True, False, False]
    assert sheets.match(truth, cls, xyxy, scores, {"car"})[2] == 1  # the truck is no car
    s, tp, n = sheets.match(truth, cls, xyxy, scores, sheets.VEHICLES)
    assert n == 1 and tp.tolist() == [True]
