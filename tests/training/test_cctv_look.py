"""`gridsight train dataset cctv`: camera-look copies beside the training images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from tests.support.shapes import make_shapes_dataset
from tests.training.test_loop import gs
from training.cctv_look import cctv_look


def test_each_training_image_gets_one_degraded_copy_with_its_boxes(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "ds", 6, 3, size=(320, 192))
    out = gs("train", "dataset", "cctv", "--data", data)
    assert "6 camera-look copies written" in out
    train, labels = tmp_path / "ds/images/train", tmp_path / "ds/labels/train"
    for original in sorted(train.glob("s???.png")):
        copy = train / f"{original.stem}.cctv.jpg"
        assert copy.is_file()
        assert (labels / f"{copy.stem}.txt").read_text() == (labels / f"{original.stem}.txt").read_text()
        a, b = cv2.imread(str(original)), cv2.imread(str(copy))
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 2  # visibly changed
    assert len(list((tmp_path / "ds/images/val").iterdir())) == 3  # validation untouched
    assert "0 camera-look copies written" in gs("train", "dataset", "cctv", "--data", data)  # once only


def test_the_look_is_reproducible_and_keeps_the_picture_size() -> None:
    image = np.random.default_rng(0).integers(0, 255, (97, 131, 3), dtype=np.uint8)  # odd sizes: x264 needs even
    first, light = cctv_look(image, np.random.default_rng(5))
    again, light2 = cctv_look(image, np.random.default_rng(5))
    assert first.shape == image.shape and light == light2 and np.array_equal(first, again)


def test_a_missing_dataset_is_named(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", "train", "dataset", "cctv", "--data", str(tmp_path / "no.yaml")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 1 and "no.yaml: no such file" in out.stderr
