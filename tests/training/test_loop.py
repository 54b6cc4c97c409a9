"""The trainer's whole loop, as a trainer runs it, on a tiny dataset:

import → train → export FP32 + INT8 → evaluate → register → shadow on a running camera
(findings stored, nothing filed) → promote → the running pipeline opens incidents with it.

The "garbage" here is red squares (synthetic shapes mapped onto the bundled class names),
and the camera watches a video of a training image, so even a model trained for a minute
finds it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import yaml

from detector.analysis.onnx_detector import OnnxModel
from tests.conftest import write_config
from tests.support.shapes import make_shapes_dataset

pytestmark = [pytest.mark.training, pytest.mark.slow]
pytest.importorskip("ultralytics")

MODEL = "gridsight-detector"


def gs(*args: str | Path) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "detector.cli", *map(str, args)], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, f"gridsight {' '.join(map(str, args))}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


def write_video(path: Path, image: np.ndarray, seconds: int, fps: int = 5) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = image.shape[1], image.shape[0], "yuv420p"
        stream.options = {"g": str(fps * 2)}
        rng = np.random.default_rng(0)
        for _ in range(seconds * fps):
            noisy = cv2.add(image, rng.integers(0, 4, image.shape, dtype=np.uint8))
            for packet in stream.encode(av.VideoFrame.from_ndarray(noisy, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def wait_for(what: str, query: str, db: Path, seconds: float = 90) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    if n := con.execute(query).fetchone()[0]:
                        return n
            except sqlite3.OperationalError:  # tables not created yet
                pass
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s: {what}")


def train_losses(run: Path) -> list[float]:
    """Per epoch, the training loss (box + cls + dfl) from the run's results.csv."""
    rows = [line.split(",") for line in (run / "results.csv").read_text().splitlines()]
    cols = [rows[0].index(k) for k in ("train/box_loss", "train/cls_loss", "train/dfl_loss")]
    return [sum(float(r[c]) for c in cols) for r in rows[1:]]


def assert_fine_tuning_starts_from(source_run: Path, ds: Path, run: Path, yolo: Path) -> None:
    """`train run --model x.pt` continues from x's weights (ultralytics' `pretrained=False` would drop them)."""
    gs("train", "run", "--data", ds / "data.yaml", "--run", run, "--model", source_run / "weights" / "best.pt",
       "--imgsz", 96, "--epochs", 1, "--batch", 8, "--repeat", "garbage=2", "--warmup", 0,
       "--lr", 0.0005, "--yolo-config", yolo)  # fmt: skip
    args = yaml.safe_load((run / "args.yaml").read_text())  # what ultralytics trained with
    assert (args["warmup_epochs"], args["optimizer"], args["lr0"]) == (0, "AdamW", 0.0005)
    listed = (run / "train.txt").read_text().splitlines()  # what ultralytics trained on
    assert len(listed) > len(set(listed)) and (ds / "images" / "val").exists()
    source = train_losses(source_run)
    assert train_losses(run)[0] < (source[0] + source[-1]) / 2  # near where the source ended, not where it began


def import_shapes(tmp_path: Path, n_train: int, n_val: int) -> tuple[Path, Path, str]:
    """A generated YOLO source (squares, discs), imported as garbage/overflow: (source, dataset, report)."""
    src = make_shapes_dataset(tmp_path / "shapes", n_train, n_val).parent
    mapping = tmp_path / "classes.yaml"
    mapping.write_text(
        yaml.safe_dump({"classes": ["garbage", "overflow"], "map": {"square": "garbage", "disc": "overflow"}})
    )
    ds = tmp_path / "dataset"
    report = gs("train", "dataset", "import", "--format", "yolo", "--source", src, "--classes", mapping, "--out", ds)
    return src, ds, report


def test_an_interrupted_run_resumes_where_it_stopped_with_a_new_length(tmp_path: Path) -> None:
    _, ds, _ = import_shapes(tmp_path, 24, 8)
    run = tmp_path / "run"
    args = ["train", "run", "--data", ds / "data.yaml", "--run", run, "--imgsz", 64, "--batch", 8,
            "--yolo-config", tmp_path / "yolo-config"]  # fmt: skip
    first = subprocess.Popen([sys.executable, "-m", "detector.cli", *map(str, args), "--epochs", "6"])
    try:
        deadline = time.monotonic() + 300
        whole = run / "weights" / "whole" / "last.pt"  # a checkpoint known to be written to the end
        while not whole.exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()  # interrupted after its first epoch or two
    finally:
        first.wait()
    done = len(train_losses(run))
    assert 1 <= done < 6, f"{done} epochs before the interruption"
    (run / "weights" / "last.pt").write_bytes(b"")  # as a kill in the middle of ultralytics' write leaves it

    out = gs(*args, "--epochs", 7)  # the same command resumes; here with a new length
    assert "cut off mid-write" in out and "resuming" in out
    epochs = [int(r.split(",")[0]) for r in (run / "results.csv").read_text().splitlines()[1:]]
    # in order and none lost; an epoch killed between its results row and its checkpoint is run again
    assert epochs == sorted(epochs) and sorted(set(epochs)) == list(range(1, 8)) and len(epochs) <= 8
    record = json.loads((run / "gridsight_train.json").read_text())
    assert "--epochs 6; resumed: " in record["command"] and record["command"].endswith("--epochs 7")


def test_import_train_export_register_shadow_promote(tmp_path: Path) -> None:
    yolo = tmp_path / "yolo-config"
    src, ds, report = import_shapes(tmp_path, 48, 12)
    assert "garbage" in report and "overflow" in report
    run = tmp_path / "run"
    gs("train", "run", "--data", ds / "data.yaml", "--run", run, "--imgsz", 96, "--epochs", 25, "--batch", 8,
       "--close-mosaic", 5, "--yolo-config", yolo)  # fmt: skip
    assert (run / "weights" / "best.pt").exists()
    assert_fine_tuning_starts_from(run, ds, tmp_path / "fine-tune", yolo)

    out = gs("train", "export", "--weights", run / "weights" / "best.pt", "--data", ds / "data.yaml",
             "--out", tmp_path / "export", "--width", 160, "--height", 96, "--calibration", 24,
             "--yolo-config", yolo)  # fmt: skip
    assert "INT8 vs FP32: AP50 drop" in out
    table = gs("train", "evaluate", "--model", tmp_path / "export" / "int8", "--data", ds / "data.yaml", "--active", "")
    assert "garbage" in table and "AP50" in table

    models = tmp_path / "models"
    licences = tmp_path / "licences.yaml"
    licences.write_text(yaml.safe_dump([{"dataset": "shapes", "licence": "CC0-1.0", "source": "tests"}]))
    gs("train", "register", tmp_path / "export" / "fp32", "--version", "1", "--models-dir", models, "--default")
    gs("train", "register", tmp_path / "export" / "int8", "--version", "2", "--models-dir", models,
       "--run", run, "--dataset", ds, "--licences", licences)  # fmt: skip
    manifest = yaml.safe_load((models / MODEL / "2" / "manifest.yaml").read_text())
    assert manifest["classes"] == ["garbage", "overflow"] and manifest["dataset_hash"]
    assert manifest["data_licences"][0]["licence"] == "CC0-1.0" and "train run" in manifest["training_command"]
    assert (models / MODEL / "2" / "weights.pt").exists()
    # version 1 (FP32) is the default; make it blind so that only version 2's findings count
    blind = yaml.safe_load((models / MODEL / "1" / "manifest.yaml").read_text())
    blind["thresholds"]["conf"] = 1.0
    (models / MODEL / "1" / "manifest.yaml").write_text(yaml.safe_dump(blind))

    # the scene: a training picture in which the new model sees garbage (it has trained for a minute only)
    model = OnnxModel(models / MODEL / "2")
    images = (cv2.imread(str(p)) for p in sorted((src / "images" / "train").glob("*.png")))
    frame = next((im for im in images if "detector:garbage" in model.predict([im])[0].labels), None)
    assert frame is not None, "the trained model finds no garbage in any training picture"
    video = tmp_path / "scene.mp4"
    write_video(video, cv2.resize(frame, (320, 192)), seconds=60)
    cam = {
        "id": "cam-1", "name": "训练测试", "problems": ["06010"], "cadence_s": 2, "gate": {"enabled": False},
        "location": {"division_code": "110107", "grid_code": "110107001002003"},
        "source": {"url": str(video), "loop": True, "start_time": "2026-03-02T10:00:00+08:00"},
        "rules": {"06010": {"min_score": 0.05, "persistence": {"k": 2, "n": 3, "minutes": 0.1}}},
    }  # fmt: skip
    cfg = write_config(tmp_path, [cam], models_dir=str(models))
    db = tmp_path / "gridsight.db"
    gs("model", "shadow", MODEL, "2", "--camera", "cam-1", "--config", cfg)

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "detector.cli", "run", "--config", str(cfg), "--for", "120"],
                            stdout=log, stderr=log, env=env)  # fmt: skip
    try:
        wait_for("shadow findings", "SELECT count(*) FROM model_findings WHERE role = 'shadow'", db)
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0  # shadow files nothing
            assert con.execute("SELECT count(*) FROM model_findings WHERE role = 'active'").fetchone()[0] == 0
        # while it runs: no restart; forced, a minute of training may leave a class at AP50 0
        gs("model", "promote", MODEL, "2", "--force", "a minute of training", "--config", cfg)
        incidents = "SELECT count(*) FROM incidents WHERE problem_code = '06010'"
        wait_for("an incident from the promoted model", incidents, db)
    finally:
        proc.terminate()
        proc.wait(30)
    report = gs("model", "list", "--config", cfg)
    assert f"{MODEL}: active=2" in report
