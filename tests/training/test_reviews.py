"""Operators' verdicts → a labelled dataset: labels, negatives, duplicates and leak-free splits."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
import yaml
from sqlalchemy import select

from detector.cli import main
from detector.config import load_config
from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.incidents.manager import IncidentManager
from detector.rules.engine import CameraRules
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import Incident, open_database
from detector.types import Observations
from tests.conftest import write_config
from training.datasets import ClassMap
from training.reviews import assign_splits, detector_class, group_key

SH = ZoneInfo("Asia/Shanghai")
DAY1 = datetime(2026, 3, 6, 15, 0, tzinfo=SH)
DAY2, DAY3 = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2)
FAST = {"persistence": {"k": 1, "n": 1, "minutes": 0}, "clear_minutes": 1}
FULL_VIEW = [{"name": "walk", "purpose": "no_vending", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}]
LOWER_HALF = [{"name": "walk", "purpose": "no_vending", "polygon": [[0, 0.45], [1, 0.45], [1, 1], [0, 1]]}]
CLASSES = ["garbage", "overflow", "smoke"]

G = (0.10, 0.50, 0.30, 0.70)  # garbage on camera c1
OV = (0.60, 0.50, 0.80, 0.70)  # overflow
K = (0.40, 0.10, 0.55, 0.35)  # smoke above the no-vending stretch of c1: burning (06020)
K2 = (0.40, 0.60, 0.50, 0.80)  # smoke in it: a barbecue (06029)
O2, O2_FIXED = (0.60, 0.05, 0.75, 0.20), (0.62, 0.06, 0.74, 0.19)
S = (0.40, 0.55, 0.60, 0.90)  # a stall (occupancy: no single detector class)
#: the model-free label that finds stalls (09006 also lists several detector classes)
OCC = next(o for o in load_taxonomy(None)["09006"].outputs if not o.startswith("detector:"))
G2, G3 = (0.10, 0.10, 0.25, 0.30), (0.70, 0.10, 0.85, 0.30)


def camera(cam_id: str, problems: list[str], zones: list[dict] = FULL_VIEW, **rules: dict) -> dict:
    return {
        "id": cam_id,
        "name": f"测试 {cam_id}",
        "source": {"url": "/x.mp4"},
        "zones": zones,
        "problems": problems,
        "rules": {code: {**FAST, **rules.get(f"r{code}", {})} for code in problems},
        "filing": {code: {"mode": "review"} for code in problems},
    }


def scene(seed: int) -> np.ndarray:
    return cv2.resize(np.random.default_rng(seed).integers(0, 255, (9, 16, 3), np.uint8), (640, 360))


class World:
    """A deployment with two cameras, incidents opened by the real incident manager."""

    def __init__(self, root: Path) -> None:
        cams = [
            camera("c1", ["06010", "06042", "06020", "06029"], LOWER_HALF,
                   r06029={"persistence": {"k": 2, "n": 2, "minutes": 0}}),
            camera("c2", ["06010", "06042", "09006"]),
        ]
        self.config = write_config(root, cams)
        loaded = load_config(self.config)
        assert loaded.errors == []
        self.taxonomy = loaded.taxonomy
        self.engine, self.sessions = open_database(loaded.settings.database_url)
        self.store = EvidenceStore(loaded.settings.evidence_root)
        self.cases = CaseService(loaded.taxonomy, loaded.settings, self.store, {c.id: c for c in loaded.cameras})
        self.manager = IncidentManager(self.sessions, self.store, loaded.taxonomy, cases=self.cases)
        self.rules = {c.id: CameraRules.build(c, loaded.taxonomy) for c in loaded.cameras}
        for r in self.rules.values():
            self.manager.attach(r, ring=None)
        self.ids: dict[tuple[str, str, datetime], int] = {}

    def see(self, cam: str, ts: datetime, image: np.ndarray, *dets: tuple[tuple, str]) -> None:
        obs = Observations.build([b for b, _ in dets], [0.9] * len(dets), [lbl for _, lbl in dets])
        self.manager.process(cam, image, self.rules[cam].findings(obs, ts), ts)
        self.manager.poll(force=True)

    def leave(self, cam: str, ts: datetime) -> None:
        """Nothing in view for long enough: every open incident of the camera clears."""
        for minutes in (2, 4):
            self.see(cam, ts + timedelta(minutes=minutes), scene(999))

    def incident(self, cam: str, code: str, ts: datetime) -> int:
        with self.sessions() as s:
            return s.scalars(
                select(Incident.id).where(Incident.camera_id == cam, Incident.problem_code == code,
                                          Incident.opened_at >= ts, Incident.opened_at < ts + timedelta(hours=1))
            ).one()  # fmt: skip

    def review(self, cam: str, problem: str, ts: datetime, verdict: str, **kw: object) -> None:
        """The verdict on the incident of `problem` opened at `ts` (its id kept under (cam, problem, ts))."""
        incident_id = self.ids[cam, problem, ts] = self.incident(cam, problem, ts)
        with self.sessions() as s:
            self.cases.review(s, incident_id, verdict, **kw)
            s.commit()


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    # c1, day 1: one frame opens garbage (confirmed) and overflow (rejected)
    a = scene(1)
    w.see("c1", DAY1, a, (G, "detector:garbage"), (OV, "detector:overflow"))
    w.review("c1", "06010", DAY1, "confirm")
    w.review("c1", "06042", DAY1, "reject", note="是垃圾桶")
    # 20 s later two plumes, the garbage still there: 06020 opens on the first frame, 06029 on the
    # second, a near-identical one; both confirmed
    b = scene(2)
    smoke = (K, "detector:smoke"), (K2, "detector:smoke")
    w.see("c1", DAY1 + timedelta(seconds=20), b, (G, "detector:garbage"), *smoke)
    b2 = np.clip(b.astype(np.int16) + np.random.default_rng(3).integers(-2, 3, b.shape), 0, 255).astype(np.uint8)
    w.see("c1", DAY1 + timedelta(seconds=40), b2, (G, "detector:garbage"), *smoke)
    w.review("c1", "06020", DAY1, "confirm")
    w.review("c1", "06029", DAY1, "confirm")
    w.leave("c1", DAY1 + timedelta(seconds=40))
    # c1, day 2: an "overflow" that is loose garbage, relabelled with a corrected box
    w.see("c1", DAY2, scene(4), (O2, "detector:overflow"))
    w.review("c1", "06042", DAY2, "relabel", code="06010", box=O2_FIXED, note="散落垃圾")
    w.leave("c1", DAY2)
    # c2, day 1: a rejected garbage next to a confirmed stall of no single class: left out
    w.see("c2", DAY1, scene(5), (G, "detector:garbage"), (S, OCC))
    w.review("c2", "06010", DAY1, "reject")
    w.review("c2", "09006", DAY1, "confirm")
    w.leave("c2", DAY1)
    # c2, day 2: a rejected garbage alone: a hard negative
    w.see("c2", DAY2, scene(6), (G2, "detector:garbage"))
    w.review("c2", "06010", DAY2, "reject")
    w.leave("c2", DAY2)
    # c2, day 3: a rejected overflow while a garbage incident waits for review: left out
    w.see("c2", DAY3, scene(7), (OV, "detector:overflow"), (G3, "detector:garbage"))
    w.review("c2", "06042", DAY3, "reject")
    w.leave("c2", DAY3)
    return w


def class_map(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "classes.yaml"
    path.write_text(yaml.safe_dump({"classes": CLASSES, **extra}))
    return path


def read_labels(out: Path) -> dict[int, tuple[str, list[list[float]]]]:
    """incident id → (split, [[class id, cx, cy, w, h], ...]) from the index and the label files."""
    index = json.loads((out / "reviews_index.json").read_text())["images"]
    found = {}
    for item in index:
        label = out / item["image"].replace("images/", "labels/", 1).rsplit(".", 1)[0]
        rows = [[float(v) for v in line.split()] for line in Path(f"{label}.txt").read_text().splitlines()]
        for inc in item["incidents"]:
            found[inc] = (item["split"], sorted(rows))
    return found


def yolo(cls: int, box: tuple[float, float, float, float]) -> list[float]:
    x0, y0, x1, y1 = box
    return [cls, (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]


def test_verdicts_become_labels_negatives_and_counted_skips(world: World, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    args = ["train", "dataset", "from-reviews", "--config", str(world.config), "--out", str(out),
            "--classes", str(class_map(tmp_path)), "--val-fraction", "0.5"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "verdicts read: confirmed 4, relabelled 1, rejected 4" in printed

    ids = world.ids
    found = read_labels(out)
    garbage, smoke = CLASSES.index("garbage"), CLASSES.index("smoke")
    # the confirmed garbage and the rejected overflow share one frame: one image, the garbage box
    first = found[ids["c1", "06010", DAY1]]
    assert first == found[ids["c1", "06042", DAY1]]
    assert np.allclose(first[1], [yolo(garbage, G)], atol=1e-5)
    # the smoke frames also show the confirmed garbage; the second, near-identical one is folded in
    smoke_img = found[ids["c1", "06020", DAY1]]
    assert smoke_img == found[ids["c1", "06029", DAY1]]
    assert np.allclose(smoke_img[1], sorted([yolo(garbage, G), yolo(smoke, K), yolo(smoke, K2)]), atol=1e-5)
    # relabelled: the corrected class (garbage, not overflow) and the corrected box
    assert np.allclose(found[ids["c1", "06042", DAY2]][1], [yolo(garbage, O2_FIXED)], atol=1e-5)
    # rejected alone: a hard negative (an empty label file)
    assert found[ids["c2", "06010", DAY2]][1] == []
    # left out: the stall of no single class, the garbage rejected beside it, the frame with a pending garbage
    for key in [("c2", "09006", DAY1), ("c2", "06010", DAY1), ("c2", "06042", DAY3)]:
        assert ids[key] not in found

    report = json.loads((out / "import_report.json").read_text())["reviews"]
    assert report["reviews"] == {"confirmed": 4, "relabelled": 1, "rejected": 4}
    assert report["identical_merged"] == 1 and report["near_duplicates"] == 1
    no_class = f"09006 ({OCC}): no single detector class (map problem:09006 to one)"
    assert report["skipped"] == {
        no_class: 1,
        f"another object in view cannot be labelled: {no_class}": 1,
        "another object in view cannot be labelled: garbage, not reviewed": 1,
    }
    assert sum(report["images"].values()) == 4 and sum(report["empty_images"].values()) == 1
    assert sum(c.get("garbage", 0) for c in report["boxes"].values()) == 3
    assert sum(report["groups"].values()) == 3  # c1 day 1, c1 day 2, c2 day 2
    # the clean JPEGs, not the annotated ones: the bytes are the incident's clean evidence file
    with world.sessions() as s:
        inc = s.get(Incident, ids["c2", "06010", DAY2])
        clean = next(e for e in inc.evidence if e.kind == "clean")
    assert (out / "images" / found[inc.id][0] / f"reviews__{Path(clean.path).stem}.jpg").read_bytes() == (
        world.store.resolve(clean.path).read_bytes()
    )


def test_no_camera_time_group_crosses_splits(world: World, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    # more groups: four more days of both cameras (two days apart: no recurrences), so both splits are used
    for days in (7, 9, 11, 13):
        t = DAY1 + timedelta(days=days)
        for cam, seed in (("c1", 100 + days), ("c2", 200 + days)):
            for i, dt in enumerate((0, 3600, 7200)):  # three distinct frames per camera and day
                box = (0.1 + 0.25 * i, 0.2, 0.3 + 0.25 * i, 0.45)
                w_ts = t + timedelta(seconds=dt)
                world.see(cam, w_ts, scene(seed * 10 + i), (box, "detector:garbage"))
                world.review(cam, "06010", w_ts, "confirm")
                world.leave(cam, w_ts)
    assert main(["train", "dataset", "from-reviews", "--config", str(world.config), "--out", str(out),
                 "--classes", str(class_map(tmp_path)), "--val-fraction", "0.4"]) == 0  # fmt: skip
    index = json.loads((out / "reviews_index.json").read_text())["images"]
    splits_of_group: dict[str, set[str]] = defaultdict(set)
    for item in index:
        splits_of_group[item["group"]].add(item["split"])
        taken = datetime.fromisoformat(item["taken_at"])
        assert item["group"] == group_key(item["camera"], taken, 24)
        assert (out / item["image"]).is_file()
    assert len(splits_of_group) == 3 + 8
    assert all(len(s) == 1 for s in splits_of_group.values()), splits_of_group
    assert {next(iter(s)) for s in splits_of_group.values()} == {"train", "val"}
    # on disk too: every image of a group sits in its split's folder, nowhere else
    for split in ("train", "val"):
        names = {p.name for p in (out / "images" / split).iterdir()}
        assert names == {Path(i["image"]).name for i in index if i["split"] == split}

    # a second export replaces the first (no stale copies); --since keeps only the later frames
    since = (DAY1 + timedelta(days=7)).date().isoformat()
    assert main(["train", "dataset", "from-reviews", "--config", str(world.config), "--out", str(out),
                 "--classes", str(class_map(tmp_path)), "--val-fraction", "0.4", "--since", since]) == 0  # fmt: skip
    again = json.loads((out / "reviews_index.json").read_text())["images"]
    assert len(again) == 24 and all(datetime.fromisoformat(i["taken_at"]) >= DAY1 + timedelta(days=7) for i in again)
    assert sum(1 for _ in out.glob("images/*/reviews__*")) == 24 == sum(1 for _ in out.glob("labels/*/reviews__*"))
    # the same groups keep their splits from one export to the next
    assert {i["group"]: i["split"] for i in again} == {i["group"]: i["split"] for i in index if i["group"] in
                                                       {j["group"] for j in again}}  # fmt: skip


def test_a_problem_mapping_labels_occupancy_findings(world: World, tmp_path: Path) -> None:
    from training.reviews import export_from_config

    classes = tmp_path / "classes.yaml"
    classes.write_text(yaml.safe_dump({"classes": [*CLASSES, "stall"], "map": {"problem:09006": "stall"}}))
    report = export_from_config(world.config, tmp_path / "ds", classes, val_fraction=0.5)
    assert report.skipped == {"another object in view cannot be labelled: garbage, not reviewed": 1}
    found = read_labels(tmp_path / "ds")
    stall = found[world.ids["c2", "09006", DAY1]]
    assert stall == found[world.ids["c2", "06010", DAY1]]  # one frame: the stall box, not a negative
    assert np.allclose(stall[1], [yolo(3, S)], atol=1e-5)


def test_errors_are_clear(world: World, tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    (out).mkdir()
    (out / "data.yaml").write_text(yaml.safe_dump({"names": ["other"]}))
    args = ["train", "dataset", "from-reviews", "--config", str(world.config), "--out", str(out),
            "--classes", str(class_map(tmp_path))]  # fmt: skip
    assert main(args) == 1
    assert "holds classes ['other']" in capsys.readouterr().err
    assert main([*args[:-2], "--classes", str(tmp_path / "nope.yaml")]) == 1
    assert "cannot read class mapping" in capsys.readouterr().err
    assert main([*args, "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    assert main([*args, "--prefix", "*"]) == 1
    assert "prefix: letters, digits" in capsys.readouterr().err
    assert main([*args, "--val-fraction", "1.5"]) == 1
    assert "val_fraction: expected 0..1" in capsys.readouterr().err
    empty = write_config(tmp_path / "other", [], database_url=f"sqlite:///{tmp_path / 'missing.db'}")
    assert main(["train", "dataset", "from-reviews", "--config", str(empty), "--out", str(tmp_path / "x"),
                 "--classes", str(class_map(tmp_path))]) == 1  # fmt: skip
    assert "no database at" in capsys.readouterr().err


def test_splits_are_whole_groups_stable_and_never_one_sided() -> None:
    groups = [f"cam{c}|2026-03-{d:02d}T00:00" for c in range(5) for d in range(1, 21)]
    split = assign_splits(groups, 0.25)
    assert set(split) == set(groups) and set(split.values()) == {"train", "val"}
    assert 0.1 < sum(v == "val" for v in split.values()) / len(groups) < 0.4
    more = assign_splits([*groups, "cam9|2026-04-01T00:00"], 0.25)
    assert all(more[g] == split[g] for g in groups)  # new data never moves old groups
    assert sorted(assign_splits(["a|1", "b|1"], 0.001).values()) == ["train", "val"]
    assert sorted(assign_splits(["a|1", "b|1"], 0.999).values()) == ["train", "val"]
    assert assign_splits(["a|1"], 0.2) == {"a|1": "train"} or assign_splits(["a|1"], 0.2) == {"a|1": "val"}


def test_group_key_is_the_local_day_or_block() -> None:
    late = datetime(2026, 3, 6, 23, 30, tzinfo=SH)
    assert group_key("c1", late, 24) == "c1|2026-03-06T00:00"
    assert group_key("c1", late + timedelta(hours=1), 24) == "c1|2026-03-07T00:00"  # past local midnight
    assert group_key("c1", late, 6) == "c1|2026-03-06T18:00"
    assert group_key("c1", late, 0) == "c1"


def test_a_class_map_problem_key_is_accepted(tmp_path: Path) -> None:
    m = ClassMap.load(class_map(tmp_path, map={"problem:09006": "garbage"}))
    assert m.rename["problem:09006"] == "garbage"


def test_a_confirmed_stall_is_labelled_as_its_problem_never_as_a_detection_under_it() -> None:
    """The demo stall (09006, found by occupancy) once had a win_ad detection under its box and
    was exported as a win_ad: only the problem's own outputs or its mapping may name the class."""
    tax = load_taxonomy(None)
    mapped = ClassMap(["stall", "umbrella", "win_ad"], {"problem:09006": "stall"})
    assert detector_class("09006", "detector:win_ad", tax, mapped) == "stall"
    assert detector_class("09006", OCC, tax, mapped) == "stall"
    assert detector_class("09006", "detector:umbrella", tax, mapped) == "umbrella"  # one of 09006's outputs
    unmapped = ClassMap(["stall", "umbrella", "win_ad"], {})
    assert detector_class("09006", "detector:win_ad", tax, unmapped) is None  # unknown: skipped, not win_ad
