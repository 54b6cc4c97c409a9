"""Shared fixtures: real video files, generated street scenes and config directories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from detector.synthetic.demo import StreetSpec, ensure_demo_video

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "datasets" / "videos"

# A short street: 640x360, 2 minutes, GOP 2 s, a stall from 20 s to 100 s.
SHORT_STREET = StreetSpec(
    width=640, height=360, fps=10, duration_s=120, stall_arrive_s=20, stall_leave_s=100, cloud_s=None
)


@pytest.fixture(scope="session")
def video_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def short_street(video_cache: Path) -> Path:
    return ensure_demo_video(video_cache, SHORT_STREET)


@pytest.fixture
def shared_video() -> Callable[[str], Path]:
    def get(name: str) -> Path:
        path = SHARED_VIDEOS / name
        if not path.exists():
            pytest.skip(f"{path} not present (../shared/datasets/videos)")
        return path

    return get


def write_config(root: Path, cameras: list[dict], **settings: object) -> Path:
    """A configuration directory whose database, evidence and cache live under `root`."""
    cfg = root / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    base = {
        "database_url": f"sqlite:///{root / 'gridsight.db'}",
        "evidence_root": str(root / "evidence"),
        "cache_dir": str(root / "cache"),
        "api_port": 0,
        "log_format": "json",
    }
    (cfg / "settings.yaml").write_text(yaml.safe_dump({**base, **settings}))
    (cfg / "cameras.yaml").write_text(yaml.safe_dump({"cameras": cameras}, allow_unicode=True))
    return cfg


def street_camera(video: Path, cam_id: str = "street-1", **over: object) -> dict:
    """A camera on a generated street video, with rules short enough for a test."""
    from detector.synthetic.demo import DEMO_NO_VENDING_ZONE

    cam = {
        "id": cam_id,
        "name": "测试街 " + cam_id,
        "source": {"url": str(video), "loop": False, "start_time": "2026-03-02T10:00:00+08:00"},
        "location": {"division_code": "110107", "grid_code": "110107001002003", "street": "示范街道"},
        "cadence_s": 5,
        "zones": [{"name": "walk", "purpose": "no_vending", "polygon": [list(p) for p in DEMO_NO_VENDING_ZONE]}],
        "problems": ["09006"],
        "rules": {"09006": {"persistence": {"k": 4, "n": 6, "minutes": 1}, "clear_minutes": 0.5}},
        "evidence": {"pre_s": 3, "post_s": 3},
    }
    cam.update(over)
    return cam


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server (started by .ci/run), dropped afterwards."""
    import uuid

    import psycopg

    name = f"gridsight_test_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432 ({e})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
