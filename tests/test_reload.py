"""Config reload in a running GridSight: zones, added and removed cameras applied without a restart;
an invalid folder refused with its errors while the old config runs on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from api.accounts import create_token
from detector.runtime.app import GridSight, build
from tests.conftest import street_camera, write_config
from tests.support.waiting import wait_until

GATE = {
    "name": "gate",
    "display_name": "东门口",
    "purpose": "no_parking",
    "polygon": [[0.1, 0.1], [0.5, 0.1], [0.3, 0.5]],
}


def live_camera(video: Path, cam_id: str) -> dict:
    return street_camera(video, cam_id, source={"url": str(video), "loop": True, "speed": 2.0})


def cameras_file(cfg: Path) -> Path:
    return cfg / "cameras.yaml"


def set_cameras(cfg: Path, cams: list[dict]) -> None:
    cameras_file(cfg).write_text(yaml.safe_dump({"cameras": cams}, allow_unicode=True), encoding="utf-8")


class Running:
    def __init__(self, cfg: Path, watch: bool) -> None:
        self.app: GridSight = build(cfg)
        self.app.watch_config = watch
        self.app.start()
        self.thread = threading.Thread(target=self.app.run, daemon=True)
        self.thread.start()
        with self.app.sessions.begin() as s:
            admin, viewer = create_token(s, "t-admin", "admin"), create_token(s, "t-viewer", "viewer")
        base = f"http://127.0.0.1:{self.app.api_port}/api/v1"
        self.http = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {admin}"})
        self.viewer = {"Authorization": f"Bearer {viewer}"}

    def zones(self, cam_id: str) -> list[str]:
        return [z["name"] for z in self.http.get(f"/cameras/{cam_id}").json()["zones"]]

    def running_zones(self, cam_id: str) -> list[str] | None:
        rt = self.app.pipeline.cameras.get(cam_id)
        return None if rt is None else sorted(rt.rules.zones.zones)

    def stop(self) -> None:
        self.http.close()
        self.app.request_stop()
        self.thread.join(60)
        self.app.stop()


@pytest.fixture
def running(request: pytest.FixtureRequest, short_street: Path, tmp_path: Path) -> Iterator[Running]:
    cfg = write_config(tmp_path, [live_camera(short_street, "street-1")])
    r = Running(cfg, watch=request.param)
    yield r
    r.stop()


@pytest.mark.parametrize("running", [False], indirect=True)
def test_reload_api_applies_zones_and_cameras_and_refuses_an_invalid_folder(
    running: Running, short_street: Path
) -> None:
    http, cfg = running.http, running.app.config_dir
    assert cfg is not None
    r = http.put("/cameras/street-1/zones", json={"zones": [{**GATE, "polygon": [[0.1, 0.1], [0.5, 0.1]]}]})
    assert r.status_code == 422 and "zones.0.polygon" in r.text
    assert http.put("/cameras/street-1/zones", json={"zones": [GATE]}, headers=running.viewer).status_code == 403
    r = http.put("/cameras/street-1/zones", json={"zones": [GATE]})
    assert r.status_code == 200, r.text
    assert "name: gate" in cameras_file(cfg).read_text(encoding="utf-8")
    assert running.zones("street-1") == ["walk"]  # written, not yet applied

    assert http.post("/config/reload", headers=running.viewer).status_code == 403
    r = http.post("/config/reload")
    assert r.status_code == 200 and r.json()["updated"] == ["street-1"], r.text
    assert running.zones("street-1") == ["gate"] and running.running_zones("street-1") == ["gate"]
    frames = running.app.pipeline.cameras["street-1"].frames
    wait_until(
        "street-1 analyses on after the swap", lambda: running.app.pipeline.cameras["street-1"].frames > frames, 20
    )

    current = yaml.safe_load(cameras_file(cfg).read_text(encoding="utf-8"))["cameras"]
    set_cameras(cfg, [*current, live_camera(short_street, "street-2")])
    r = http.post("/config/reload")
    assert r.status_code == 200 and r.json()["added"] == ["street-2"], r.text
    wait_until("street-2 analyses", lambda: running.app.pipeline.cameras["street-2"].frames > 0, 30)
    assert {c["id"] for c in http.get("/cameras").json()} == {"street-1", "street-2"}

    set_cameras(cfg, [*current, {**live_camera(short_street, "street-2"), "cadence_s": "often"}])
    r = http.post("/config/reload")
    assert r.status_code == 422, r.text
    assert any("street-2" in d["msg"] and "cadence_s" in d["msg"] for d in r.json()["detail"])
    assert set(running.app.pipeline.cameras) == {"street-1", "street-2"}  # the old config runs on
    assert running.running_zones("street-1") == ["gate"]

    set_cameras(cfg, current)
    r = http.post("/config/reload")
    assert r.status_code == 200 and r.json()["removed"] == ["street-2"], r.text
    assert set(running.app.pipeline.cameras) == {"street-1"}
    assert not [rd for rd in running.app.readers if rd.camera_id == "street-2"]
    assert {c["id"] for c in http.get("/cameras").json()} == {"street-1"}

    with running.app.sessions() as s:
        from detector.store.db import AuditLog

        actions = [a.action for a in s.query(AuditLog).order_by(AuditLog.id) if a.actor == "t-admin"]
    assert actions == ["camera.zones", *["config.reload"] * 4]


@pytest.mark.parametrize("running", [True], indirect=True)
def test_a_changed_file_is_reloaded_and_a_broken_one_logged_and_ignored(
    running: Running, short_street: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = running.app.config_dir
    assert cfg is not None
    caplog.set_level(logging.INFO, logger="detector.runtime.app")
    broken = {**live_camera(short_street, "street-1"), "zones": [{**GATE, "purpose": "parking"}]}
    set_cameras(cfg, [broken])
    wait_until("the refusal logged", lambda: "config reload refused" in caplog.text, 15, 0.2)
    assert any("zones.0.purpose" in getattr(r, "error", "") for r in caplog.records)  # the error, named
    assert running.running_zones("street-1") == ["walk"]

    set_cameras(cfg, [{**live_camera(short_street, "street-1"), "zones": [GATE]}])
    wait_until("the new zone applied", lambda: running.running_zones("street-1") == ["gate"], 15, 0.2)
    assert running.zones("street-1") == ["gate"]
