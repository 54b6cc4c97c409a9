"""Incident lifecycle on a real SQLite database and evidence store."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select, update

from detector.analysis.text import shared_engine
from detector.config import Camera
from detector.incidents import captions
from detector.incidents.evidence import GRACE_S, EvidenceStore
from detector.incidents.manager import IncidentManager
from detector.rules.engine import CameraRules
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import (
    CameraRow,
    Candidate,
    EvidenceFile,
    Incident,
    IncidentEvent,
    make_engine,
    migrate,
    session_factory,
)
from detector.types import Observations

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TAX = load_taxonomy(None)
STALL = (0.50, 0.45, 0.60, 0.70)
CAM = Camera.model_validate(
    {
        "id": "c1",
        "name": "c1",
        "source": {"url": "/x.mp4"},
        "zones": [
            {"name": "walk", "display_name": "人行道东段", "purpose": "no_vending",
             "polygon": [[0, 0.5], [1, 0.5], [1, 0.8], [0, 0.8]]},
        ],
        "problems": ["09006"],
        "rules": {"09006": {"persistence": {"k": 3, "n": 4, "minutes": 1}, "clear_minutes": 1}},
    }
)  # fmt: skip
IMAGE = cv2.resize(np.random.default_rng(0).integers(0, 255, (36, 64, 3), np.uint8), (640, 360))


class World:
    """A manager on a real database; `restart()` builds a new one on the same files."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.engine = make_engine(url)
        migrate(self.engine)
        self.sessions = session_factory(self.engine)
        self.store = EvidenceStore(root / "evidence")
        self.restart()

    def restart(self) -> None:
        self.manager = IncidentManager(self.sessions, self.store, TAX)
        self.rules = CameraRules.build(CAM, TAX)
        self.manager.attach(self.rules, ring=None)

    def step(self, i: int, present: bool) -> None:
        ts = T0 + timedelta(seconds=20 * i)
        obs = Observations.build([STALL], [0.9], ["occupancy:stationary"]) if present else Observations()
        self.manager.process("c1", IMAGE, self.rules.findings(obs, ts), ts)
        self.manager.poll()

    def incidents(self) -> list[Incident]:
        with self.sessions() as s:
            return list(s.scalars(select(Incident)))

    def events(self) -> list[str]:
        with self.sessions() as s:
            return list(s.scalars(select(IncidentEvent.kind).order_by(IncidentEvent.id)))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> World:
    if request.param == "sqlite":
        return World(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    url = request.getfixturevalue("postgres_url")
    w = World(tmp_path, url)
    request.addfinalizer(w.engine.dispose)
    return w


def test_open_present_clear_recur_on_one_row(world: World) -> None:
    for i in range(4):  # 0..60 s present: k=3 of 4 and 1 minute reached at i=3
        world.step(i, True)
    [inc] = world.incidents()
    assert inc.state == "open" and inc.opened_at == T0 + timedelta(seconds=60)
    world.step(4, True)
    for i in range(5, 9):  # absent for 80 s > clear_minutes
        world.step(i, False)
    [inc] = world.incidents()
    assert inc.state == "cleared" and inc.active_key is None
    for i in range(9, 13):  # back: qualifies again after k hits and 1 minute
        world.step(i, True)
    [inc] = world.incidents()
    assert inc.state == "recurred" and inc.recurrences == 1 and inc.active_key is not None
    world.step(13, True)
    assert world.events() == ["opened", "present", "cleared", "recurred", "present"]


def test_evidence_is_written_and_hashes_match(world: World) -> None:
    for i in range(5):
        world.step(i, True)
    with world.sessions() as s:
        files = list(s.scalars(select(EvidenceFile)))
    assert {f.kind for f in files} == {"first_seen", "clean", "annotated"}
    for f in files:
        data = world.store.resolve(f.path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256 and len(data) == f.bytes
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == IMAGE.shape


def test_a_restart_continues_the_open_incident_without_opening_it_twice(world: World) -> None:
    for i in range(5):
        world.step(i, True)
    world.restart()  # everything in memory is gone; the database remains
    for i in range(5, 10):
        world.step(i, True)
    [inc] = world.incidents()
    assert inc.state == "present" and inc.last_seen_at == T0 + timedelta(seconds=20 * 9)
    # Even a replay of the same video (the clock goes back) finds the active incident.
    world.restart()
    for i in range(10):
        world.step(i, True)
    assert len(world.incidents()) == 1


def test_only_one_active_incident_per_key_even_with_two_writers(world: World) -> None:
    other = IncidentManager(world.sessions, world.store, TAX)
    other.attach(world.rules, ring=None)
    for i in range(5):
        ts = T0 + timedelta(seconds=20 * i)
        findings = world.rules.findings(Observations.build([STALL], [0.9], ["occupancy:stationary"]), ts)
        for m in (world.manager, other):
            m.process("c1", IMAGE, findings, ts)
            m.poll()
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 1
        referenced = set(s.scalars(select(EvidenceFile.path)))
    on_disk = {str(p.relative_to(world.store.root)) for p in world.store.root.glob("*/*.jpg")}
    assert on_disk == referenced  # the loser's files were removed


def age(store: EvidenceStore, rel: str) -> None:
    """As if written longer ago than the grace that spares files whose rows may be on the way."""
    then = time.time() - GRACE_S - 1
    os.utime(store.resolve(rel), (then, then))


def test_orphans_are_swept_but_not_a_file_whose_row_is_on_the_way(world: World) -> None:
    world.step(0, True)
    orphan = world.store.put_bytes("clean", b"not referenced", ".jpg")
    age(world.store, orphan.path)
    # just written by a writer whose row has not committed yet (another camera, another instance)
    waiting = world.store.put_bytes("clean", b"its row is on the way", ".jpg")
    with world.sessions() as s:
        assert world.store.sweep_orphans(s) == 1
    assert not world.store.resolve(orphan.path).exists()
    assert world.store.resolve(waiting.path).exists()


def test_retention_counts_on_the_cameras_clock_and_keeps_rows_and_files_consistent(world: World) -> None:
    """A video file's clock stands months back: its incidents cleared a minute ago are not past retention.
    And a file that another opening has just put again (the same bytes, its row not yet committed) stays."""
    for i in range(5):
        world.step(i, True)
    for i in range(5, 10):
        world.step(i, False)  # cleared at ~T0+180 s of the camera's clock
    wall = T0 + timedelta(days=300)
    with world.sessions() as s:
        assert world.store.apply_retention(s, wall, days=90) == 0
        s.execute(update(CameraRow).values(last_frame_at=T0 + timedelta(days=3)))
        s.commit()
        files = list(s.scalars(select(EvidenceFile)))
        for f in files:
            age(world.store, f.path)
        [clean] = [f for f in files if f.kind == "clean"]
        world.store.put_bytes("clean", world.store.resolve(clean.path).read_bytes(), ".jpg")  # another opening
        assert world.store.apply_retention(s, wall, days=2) == 3
        assert s.scalar(select(func.count()).select_from(EvidenceFile)) == 0
    on_disk = {str(p.relative_to(world.store.root)) for p in world.store.root.glob("*/*.jpg")}
    assert on_disk == {clean.path}
    [inc] = world.incidents()
    assert inc.state == "cleared"  # the incident row itself stays


def caption_of(store: EvidenceStore, f: EvidenceFile) -> str:
    """The caption bar of an evidence JPEG as PP-OCR reads it (spaces dropped)."""
    img = cv2.imdecode(np.frombuffer(store.resolve(f.path).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    [(text, _)] = shared_engine().recognize([img[: max(24, img.shape[0] // 24)]])
    return text.replace(" ", "")


def evidence_by_kind(world: World) -> dict[str, EvidenceFile]:
    with world.sessions() as s:
        return {f.kind: f for f in s.scalars(select(EvidenceFile))}


def test_evidence_reads_in_chinese_and_keeps_the_first_sighting_across_a_restart(world: World) -> None:
    world.step(0, True)  # the persistence window begins at T0
    world.step(1, True)
    world.restart()  # inside the window: only the database and the evidence files remain
    with world.sessions() as s:
        world.store.sweep_orphans(s)  # as every start does
    for i in range(2, 5):
        world.step(i, True)  # opens at T0+60 s
    files = evidence_by_kind(world)
    assert set(files) == {"first_seen", "clean", "annotated"}
    first, opened = caption_of(world.store, files["first_seen"]), caption_of(world.store, files["annotated"])
    assert "首次发现" in first and "10:00:00" in first, first
    assert "确认" in opened and "10:01:00" in opened and "已持续1分钟" in opened, opened
    for text in (first, opened):
        assert "09006占道经营" in text and "人行道东段" in text, text


def test_a_window_that_ends_without_an_incident_leaves_no_picture_behind(world: World) -> None:
    world.step(0, True)
    assert len(list(world.store.root.glob("*/*.jpg"))) == 1  # the first sighting, kept while the window runs
    for i in range(1, 5):
        world.step(i, False)  # no hit in the last n=4 analyses: the candidate is gone
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Candidate)) == 0
    # Spared while young (another camera may have put the same bytes and not yet named them) ...
    [picture] = world.store.root.glob("*/*.jpg")
    age(world.store, str(picture.relative_to(world.store.root)))
    world.step(5, False)  # ... deleted by the first analysis after the grace
    assert list(world.store.root.glob("*/*.jpg")) == []


@pytest.fixture
def no_cjk_font(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A machine without any CJK font (the package and the system fonts all out of reach)."""
    monkeypatch.setattr(captions, "candidates", lambda: [("/nonexistent/NotoSansCJK-Regular.ttc", 2)])
    captions.cjk_font.cache_clear()
    captions._font.cache_clear()
    yield
    captions.cjk_font.cache_clear()
    captions._font.cache_clear()


def test_without_a_cjk_font_evidence_is_drawn_in_ascii_with_one_warning(
    world: World, no_cjk_font: None, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(5):
        world.step(i, True)
    files = evidence_by_kind(world)
    assert set(files) == {"first_seen", "clean", "annotated"}
    assert [r.message for r in caplog.records if "CJK font" in r.message] == [
        "no CJK font found: evidence captions fall back to ASCII text (pip install noto-cjk-sans-otc)"
    ]
    text = caption_of(world.store, files["annotated"])
    assert "09006" in text and "Road" in text and "占道经营" not in text, text
