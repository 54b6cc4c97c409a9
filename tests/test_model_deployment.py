"""Trainers deploy models on a running `gridsight run`: shadow (stored, never filed), promote, roll back.

The two model versions are tiny ONNX graphs with fixed outputs, so what each camera runs
is visible in what it finds: version 1 sees nothing, version 2 sees garbage.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from detector.models.deployments import ModelStore
from tests.conftest import street_camera, write_config
from tests.detector.test_onnx_detector import build_constant_model, write_manifest
from tests.support.waiting import wait_until
from tests.test_run import api_token, api_url, start

pytestmark = pytest.mark.slow

MODEL = "gridsight-detector"


def _version(models: Path, version: str, score: float) -> None:
    d = models / MODEL / version
    metrics = {"dataset": "val", "per_class": {"garbage": {"AP50": 0.6}}}
    write_manifest(
        d, name=MODEL, version=version, classes=["garbage"], input={"width": 320, "height": 192}, metrics=metrics
    )
    build_constant_model(d / "model.onnx", [(160.0, 150.0, 60.0, 40.0, score)], size=(320, 192))


def test_shadow_promote_rollback_on_a_running_pipeline(short_street: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    _version(models, "1", 0.0)  # sees nothing
    _version(models, "2", 0.9)  # sees garbage in the middle of the picture
    (models / MODEL / "default_version").write_text("1\n")
    assert ModelStore(models).versions(MODEL) == ["1", "2"]
    cam = street_camera(
        short_street, problems=["06010"], cadence_s=2, gate={"enabled": False},
        source={"url": str(short_street), "loop": True, "start_time": "2026-03-02T10:00:00+08:00"},
        rules={"06010": {"zones": [], "persistence": {"k": 2, "n": 3, "minutes": 0.1}, "clear_minutes": 5}},
    )  # fmt: skip
    cfg = write_config(tmp_path, [cam], models_dir=str(models))
    trainer, viewer = api_token(cfg, "trainer"), api_token(cfg, "viewer")
    proc = start(cfg, 150, tmp_path)
    try:
        base = api_url(proc)
        with httpx.Client(base_url=base, timeout=10, headers=trainer) as http:
            listed = http.get("/api/v1/models").json()
            assert listed[0]["active"] == "1" and [v["version"] for v in listed[0]["versions"]] == ["1", "2"]

            # shadow: version 2 runs beside version 1 on the camera; its findings are stored, nothing is filed
            r = http.post(f"/api/v1/models/{MODEL}/shadow", json={"version": "2", "cameras": ["street-1"]})
            assert r.status_code == 200, r.text
            report = wait_until(
                "shadow findings",
                lambda: (rep := http.get(f"/api/v1/models/{MODEL}/shadow/report").json())["classes"]
                .get("garbage", {}).get("shadow", 0) >= 3 and rep,
                60,
            )
            assert report["classes"]["garbage"]["active"] == 0
            assert report["classes"]["garbage"]["shadow_only"] == report["classes"]["garbage"]["shadow"]
            assert http.get("/api/v1/incidents").json()["items"] == []
            assert httpx.post(
                f"{base}/api/v1/models/{MODEL}/promote", json={"version": "2"}, headers=viewer
            ).status_code == 403

            # promote: the running pipeline switches to version 2 without a restart and finds the garbage
            assert http.post(f"/api/v1/models/{MODEL}/promote", json={"version": "2"}).json()["active"] == "2"
            items = wait_until(
                "an incident from the promoted model", lambda: http.get("/api/v1/incidents").json()["items"], 60
            )
            assert items[0]["problem_code"] == "06010"
            assert http.get(f"/api/v1/models/{MODEL}/shadow/report").status_code == 404  # promotion ended it

            # roll back: version 1 again; nothing new is found
            assert http.post(f"/api/v1/models/{MODEL}/rollback").json()["active"] == "1"
            assert http.get("/api/v1/models").json()[0]["active"] == "1"
            r = http.post(f"/api/v1/models/{MODEL}/promote", json={"version": "9"})
            assert r.status_code == 400 and "no version '9'" in r.text
    finally:
        proc.terminate()
        proc.wait(30)
    con = sqlite3.connect(tmp_path / "gridsight.db")
    actions = [a for (a,) in con.execute("SELECT action FROM audit_log WHERE action LIKE 'model.%' ORDER BY id")]
    assert actions == ["model.shadow", "model.promote", "model.rollback"]
    assert con.execute("SELECT count(*) FROM cases").fetchone()[0] <= 1  # only the promoted model's incident
