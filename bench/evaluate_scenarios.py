"""Detection quality: case-level precision, recall and time-to-incident on generated scenarios, and false
incidents and CPU on real fixed-camera clips — GridSight as shipped, end to end.

    python bench/evaluate_scenarios.py [--quick] [--seeds N] [--hours H] [--skip-real] [--skip-ocr]

Every scenario video runs through the real application (`detector.runtime.app.build()`
on a temporary config dir: readers, gate, analyzers, tamper check, rules,
incidents, cases; see tests/support/replay.py) with the taxonomy's default
rules unless a row says otherwise. Videos are generated once per spec and
cached in var/bench/. See bench/README.md for the rows and the method.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tests.support is not installed
    sys.path.insert(0, str(REPO))

from real_footage import LOCAL, NIGHT, load_clips, measure  # noqa: E402

from detector.rules.engine import MAINTENANCE  # noqa: E402
from detector.synthetic.scenarios import SITE_ZONE, ScenarioSpec, ensure_scenario  # noqa: E402
from detector.synthetic.street_scenes import (  # noqa: E402
    KERB_ZONE,
    NO_VENDING_ZONE,
    SHOP_FRONT_ZONE,
    StreetSceneSpec,
    Thing,
    ensure_street_scene,
)
from tests.conftest import write_config  # noqa: E402
from tests.support.replay import Replay, replay  # noqa: E402
from training.sources import MIRRORS  # noqa: E402

CACHE = REPO / "var" / "bench"
CADENCE_S = 10
FPS = 2  # generated videos: rendering time scales with frames, analysis runs at the cadence
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Case:
    """One real problem a scenario holds: `code` should open on `camera` between `start` and `end` (+ clearing)."""

    row: str
    code: str
    camera: str
    start: datetime
    end: datetime
    box: Box | None = None  # None: keyed by the zone (dust, night works, tamper)
    phone: str | None = None


@dataclass(frozen=True)
class Found:
    camera: str
    code: str
    opened: datetime
    box: Box
    extras: dict[str, Any]


@dataclass
class Family:
    """Cameras of one kind of problem, their truth, and the scenes with nothing to find (negatives)."""

    cameras: list[dict] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    negatives: dict[str, int] = field(default_factory=dict)  # row -> negative scenes or objects
    notes: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------ scenarios


def _zone(name: str, purpose: str, poly: Iterable[tuple[float, float]]) -> dict:
    return {"name": name, "purpose": purpose, "polygon": [list(p) for p in poly]}


def _camera(cam_id: str, video: Path, start: str, zones: list[dict], problems: list[str], **over: Any) -> dict:
    return {
        "id": cam_id, "name": cam_id, "source": {"url": str(video), "loop": False, "start_time": start},
        "cadence_s": CADENCE_S, "zones": zones, "problems": problems, **over,
    }  # fmt: skip


def _ts(start: str, t: float) -> datetime:
    return datetime.fromisoformat(start) + timedelta(seconds=t)


def street_family(seeds: list[int]) -> Family:
    """Per seed a 16-minute street: a stall stays 10 min (09006), goods stay (09005), a cart stops 5-7 min
    (09001); negatives: a stall that leaves after 2-3.3 min, a trolley passing, a trolley stopping 2 min,
    a crowd, a cloud. Default rules (5, 5 and 3 minutes)."""
    fam = Family()
    zones = [_zone("walk", "no_vending", NO_VENDING_ZONE), _zone("shop", "shop_front", SHOP_FRONT_ZONE),
             _zone("kerb", "sidewalk", KERB_ZONE)]  # fmt: skip
    for s in seeds:
        u = _uniform(np.random.default_rng(1000 + s))
        cart_leave = 120 + u(300, 420)
        early = 700 + u(120, 200)
        passing = u(200, 260)
        spec = StreetSceneSpec(
            seed=s, fps=FPS, duration_s=960,
            things=(
                Thing("stall", 60, 660, x=u(0.64, 0.70), foot=u(0.655, 0.675)),
                Thing("goods", 90, None, x=u(0.905, 0.925), foot=0.60),
                Thing("cart", 120, cart_leave, x=u(0.17, 0.24), foot=u(0.69, 0.71)),
                Thing("trolley", passing, passing, x=0.5, foot=0.62),  # passes through without stopping
                Thing("stall", 700, early, x=u(0.44, 0.48), foot=0.69),
                Thing("trolley", 820, 940, x=u(0.56, 0.60), foot=0.70),
            ),
            crowds=((400.0, 460.0),), cloud_s=u(480, 560),
        )  # fmt: skip
        video, truth = ensure_street_scene(CACHE, spec)
        cam = f"street-{s}"
        fam.cameras.append(_camera(cam, video, spec.start, zones, ["09006", "09005", "09001"],
                                   rules={"09001": {"zones": ["sidewalk"]}}))  # fmt: skip
        for tt, row, code in zip(
            truth.things[:3], ("stall", "goods", "cart"), ("09006", "09005", "09001"), strict=True
        ):
            fam.cases.append(Case(row, code, cam, truth.ts(tt.rest[0]), truth.ts(tt.rest[1]), tt.box))
        for row in ("stall", "goods", "cart"):
            fam.negatives[row] = fam.negatives.get(row, 0) + 5  # early stall, 2 trolleys, crowd, cloud
    return fam


def _uniform(rng: np.random.Generator) -> Any:
    def draw(a: float, b: float) -> float:
        return round(float(rng.uniform(a, b)), 2)

    return draw


def site_family(seeds: list[int]) -> Family:
    """Per seed: dust over a working site (8 min at full strength) and a sun → cloud change while the
    machines work; a site working at night (16 min) and an idle site at night. Default rules; 08001
    watched 22:00-06:00."""
    fam = Family()
    zones = [_zone("site", "construction_site", SITE_ZONE)]
    for s in seeds:
        rng = np.random.default_rng(2000 + s)
        specs = {
            "dust": ScenarioSpec(seed=100 + s, fps=FPS, duration_s=720, works=(30, 700), dust_s=60, dust_build_s=60,
                                 dust_hold_s=480, dust_fade_s=60),
            "cloud": ScenarioSpec(seed=200 + s, fps=FPS, duration_s=600, works=(30, 580),
                                  cloud_s=round(float(rng.uniform(120, 240)), 1)),
            "works": ScenarioSpec(seed=300 + s, fps=FPS, duration_s=1080, night=True, works=(120, 1080),
                                  start="2025-06-02T23:10:00+08:00"),
            "idle": ScenarioSpec(seed=400 + s, fps=FPS, duration_s=900, night=True, start="2025-06-02T23:10:00+08:00"),
        }  # fmt: skip
        for name, spec in specs.items():
            video, truth = ensure_scenario(CACHE, spec)
            cam = f"site-{name}-{s}"
            fam.cameras.append(_camera(cam, video, spec.start, zones, ["08004", "08001"], schedules=NIGHT,
                                       rules={"08001": {"schedule": "night"}}))  # fmt: skip
            if name == "dust":
                a, b = truth.events["dust_built"][0]
                fam.cases.append(Case("dust", "08004", cam, truth.ts(a), truth.ts(b)))
            elif name == "works":
                a, b = truth.events["works"][0]
                fam.cases.append(Case("night works", "08001", cam, truth.ts(a), truth.ts(b)))
        fam.negatives["dust"] = fam.negatives.get("dust", 0) + 3  # cloud, night works, idle night
        fam.negatives["night works"] = fam.negatives.get("night works", 0) + 3  # dust by day, cloud, idle night
    return fam


def tamper_family(seeds: list[int]) -> Family:
    """Per seed: the camera knocked, its lens sprayed, its lens defocused at 180 s, with a stall pushed into
    the no-vending zone at 200 s (09006 at 1 minute: no 09006 may open while paused); and a street with a
    sun → cloud change (nothing to find)."""
    fam = Family()
    zones = [_zone("walk", "no_vending", NO_VENDING_ZONE)]
    fast = {"09006": {"persistence": {"k": 4, "n": 6, "minutes": 1}, "clear_minutes": 1}}
    for s in seeds:
        faults = {"moved": {"bump_s": 180}, "covered": {"cover_s": 180}, "blurred": {"defocus_s": 180}, "ok": {}}
        for k, (name, fault) in enumerate(faults.items()):
            extra = {"stall_arrive_s": 200} if fault else {"cloud_s": 200}
            spec = ScenarioSpec(seed=500 + 10 * s + k, fps=FPS, duration_s=480, **fault, **extra)
            video, truth = ensure_scenario(CACHE, spec)
            cam = f"tamper-{name}-{s}"
            fam.cameras.append(_camera(cam, video, spec.start, zones, ["09006"], rules=fast))
            if fault:
                fam.cases.append(Case("camera tamper", MAINTENANCE, cam, truth.ts(180), truth.ts(spec.duration_s)))
        fam.negatives["camera tamper"] = fam.negatives.get("camera tamper", 0) + 1
    return fam


def ads_family(seeds: list[int]) -> Family:
    """Per seed a 1080p wall filmed at 1 fps: 4 minutes empty (the shop sign with its phone number, the
    bus-stop board ad: permanent text), then 8 minutes with one poster (characters 9-18 px); and a
    wall where the new poster is on the road-side board, outside the wall zones. Default rule."""
    from tests.support.posters import POLE, WALL, board_poster_scene, poster_scene, scene

    fam = Family()
    zones = [_zone("wall", "wall", WALL), _zone("pole", "pole", POLE)]
    start = "2026-03-02T10:00:00+08:00"
    sizes = [9.0, 12.0, 15.0, 18.0, 10.5, 13.5, 16.5, 9.5]
    for s in seeds:
        char_px = sizes[s % len(sizes)]
        for name in ("wall", "board"):
            path = CACHE / f"ads-{name}-{s}-{char_px}-v3.mp4"
            if name == "wall":
                image, [placed] = poster_scene(40 + s, [char_px])
            else:  # the road-side poster, small enough to stay clear of the pole (a wide one reaches into it)
                for board_px in (14.0, 11.0, 9.0):
                    image, placed = board_poster_scene(40 + s, board_px)
                    if not _touches(placed.box, [WALL, POLE]):
                        break
            if not path.exists():
                _still_video(path, scene(0), image, 240, 720)
            cam = f"ads-{name}-{s}"
            fam.cameras.append(_camera(cam, path, start, zones, ["07001"], cadence_s=20))
            if name == "wall":
                fam.cases.append(Case("small ads", "07001", cam, _ts(start, 240), _ts(start, 720), phone=placed.phone))
        fam.negatives["small ads"] = fam.negatives.get("small ads", 0) + 1
    return fam


def _touches(box: tuple[int, int, int, int], polygons: list[list[tuple[float, float]]]) -> bool:
    """Whether a pixel box on the 1920x1080 poster scene meets the bounding box of any polygon."""
    x0, y0, x1, y1 = box[0] / 1920, box[1] / 1080, box[2] / 1920, box[3] / 1080
    for poly in polygons:
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        if x0 < max(xs) and x1 > min(xs) and y0 < max(ys) and y1 > min(ys):
            return True
    return False


def _still_video(path: Path, before: np.ndarray, after: np.ndarray, switch_s: int, duration_s: int) -> None:
    """1 fps H.264: `before` until `switch_s`, then `after` (as tests/test_small_ads.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = before.shape[1], before.shape[0], "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "g": "10"}
        for t in range(duration_s):
            frame = av.VideoFrame.from_ndarray(after if t >= switch_s else before, format="bgr24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    os.replace(tmp, path)


# ------------------------------------------------------------------ running and scoring


def run(fam: Family, root: Path, **kw: Any) -> tuple[Replay, list[Found]]:
    cfg = write_config(root, fam.cameras, log_level="ERROR")
    result = replay(cfg, timeout_s=3600, **kw)
    with sqlite3.connect(root / "gridsight.db") as con:
        rows = con.execute("select camera_id, problem_code, opened_at, box, details from incidents").fetchall()
        cases_for_maintenance = con.execute(
            "select count(*) from cases where problem_code = ?", (MAINTENANCE,)
        ).fetchone()[0]
    assert cases_for_maintenance == 0, "a maintenance incident became a case"
    found = [
        Found(cam, code, datetime.fromisoformat(opened).replace(tzinfo=UTC), tuple(json.loads(box)),
              json.loads(details).get("extras", {}))
        for cam, code, opened, box, details in rows
    ]  # fmt: skip
    return result, found


def _iou(a: Box, b: Box) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Score:
    row: str
    code: str
    positives: int = 0
    negatives: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    delays_s: list[float] = field(default_factory=list)
    phones_exact: int = 0
    note: str = ""

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None


def score(fam: Family, found: list[Found]) -> list[Score]:
    """Matches incidents to cases per (row, code): same camera and code, opened between the start and the end
    (+ 10 min for the persistence), box IoU >= 0.3 where the case has a box; the rest of that code's
    incidents on the family's cameras are false."""
    out: list[Score] = []
    for row, code in dict.fromkeys((c.row, c.code) for c in fam.cases):
        sc = Score(row, code, negatives=fam.negatives.get(row, 0))
        pool = [f for f in found if f.code == code]
        for case in (c for c in fam.cases if c.row == row and c.code == code):
            sc.positives += 1
            match = next(
                (f for f in sorted(pool, key=lambda f: f.opened)
                 if f.camera == case.camera and case.start <= f.opened <= case.end + timedelta(minutes=10)
                 and (case.box is None or _iou(f.box, case.box) >= 0.3)),
                None,
            )  # fmt: skip
            if match is None:
                sc.fn += 1
                continue
            pool.remove(match)
            sc.tp += 1
            sc.delays_s.append((match.opened - case.start).total_seconds())
            if case.phone is not None and match.extras.get("phones") == [case.phone]:
                sc.phones_exact += 1
        sc.fp = len(pool)
        out.append(sc)
    return out


def phone_rate(seed: int = 2026) -> tuple[int, int, int, int]:
    """OCR alone: (exact, posters, wrong numbers, 9 px posters) on generated walls, as test_text measures."""
    from detector.analysis.text import TextDetector, shared_engine
    from detector.types import Frame
    from tests.support import posters

    engine = shared_engine(1)
    t0 = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    det = TextDetector([posters.WALL, posters.POLE], engine=engine)
    for i in range(det.params.baseline_analyses):  # the empty wall: its sign is permanent text
        det.analyze(Frame("ocr", i, t0 + timedelta(minutes=i), posters.scene(0, rng=np.random.default_rng(100 + i))))
    rng = np.random.default_rng(seed)
    sizes = [9.0] * 6 + [float(v) for v in rng.uniform(9, 18, 18).round(1)]
    rng.shuffle(sizes)
    exact = wrong = n = 0
    t = t0 + timedelta(hours=3)
    for img, placed in posters.poster_scenes(77, sizes):
        det.request()
        obs = det.analyze(Frame("ocr", 99, t, img))
        t += timedelta(minutes=1)
        for p in placed:
            x0, y0, x1, y1 = p.box
            centres = (((b[0] + b[2]) / 2 * posters.W, (b[1] + b[3]) / 2 * posters.H) for b in obs.xyxy)
            phones = [
                ph
                for (cx, cy), e in zip(centres, obs.extras, strict=True)
                if x0 - 10 <= cx <= x1 + 10 and y0 - 10 <= cy <= y1 + 10
                for ph in e["phones"]
            ]
            n += 1
            exact += phones == [p.phone]
            wrong += sum(ph != p.phone for ph in phones)
    return exact, n, wrong, sum(1 for s in sizes if s == 9.0)


def real_clips(hours: float, root: Path, cadence_s: float = CADENCE_S) -> tuple[list[dict[str, Any]], float]:
    """bench/real_footage.py's clips (every analyzer on, every zone purpose on the whole frame) looped for
    `hours` of pipeline time each; returns per camera its incidents and hours, and the CPU seconds per
    camera-second. Their pictures go to var/bench/real-footage/."""
    run = measure(load_clips(MIRRORS), hours, cadence_s, root, CACHE / "real-footage")
    per = [
        {"camera": cam, "hours": v["hours"], "paused": v["paused"], "cadence_s": cadence_s,
         "incidents": [f"{i.code} {i.opened.astimezone(LOCAL):%H:%M}" for i in run["incidents"] if i.camera == cam]}
        for cam, v in run["cameras"].items()
    ]  # fmt: skip
    return per, run["cpu_per_camera_s"]


# ------------------------------------------------------------------ report


def _fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _minutes(values: list[float]) -> str:
    return f"{statistics.median(values) / 60:.1f}" if values else "–"


def table(scores: list[Score], ocr: tuple[int, int, int, int] | None, real: list[dict[str, Any]], cpu: float) -> str:
    lines = [
        "| problem | code | positives / negatives | TP | FP | FN | precision | recall | median time to incident, min |"
        " notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for sc in scores:
        note = sc.note
        if sc.code == "07001" and sc.positives:
            note = f"phone exact in incident {sc.phones_exact}/{sc.tp}" + (f"; {note}" if note else "")
        lines.append(
            f"| {sc.row} | {sc.code} | {sc.positives} / {sc.negatives} | {sc.tp} | {sc.fp} | {sc.fn} | "
            f"{_fmt(sc.precision)} | {_fmt(sc.recall)} | {_minutes(sc.delays_s)} | {note} |"
        )
    if ocr is not None:
        exact, n, wrong, nine = ocr
        lines.append(f"| OCR phone numbers | 07001 | {n} posters ({nine} at 9 px) | {exact} | {wrong} wrong | "
                     f"{n - exact} | – | {exact / n:.2f} exact | – | analyzer alone, 1080p walls |")  # fmt: skip
    if real:
        hours = sum(r["hours"] for r in real)
        false = sum(len(r["incidents"]) for r in real)
        per_day = false / hours * 24 if hours else float("nan")
        detail = "; ".join(f"{r['camera']}: {len(r['incidents'])} in {r['hours']:.1f} h" for r in real)
        lines.append(
            f"| real clips, all analyzers | all | {len(real)} cameras, {hours:.1f} camera-h | – | {false} | – | – | – "
            f"| – | {per_day:.2f} false incidents per camera-day ({detail}); "
            f"CPU {cpu * 100:.2f}% of a core per camera at cadence {real[0]['cadence_s']:g} s |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 0.5 simulated hours per real clip")
    ap.add_argument("--seeds", type=int, default=None, help="renderings per scenario (default 4, quick 2)")
    ap.add_argument("--hours", type=float, default=None, help="simulated hours per real clip (default 2, quick 0.5)")
    ap.add_argument("--skip-real", action="store_true", help="no real clips")
    ap.add_argument("--skip-ocr", action="store_true", help="no small ads (OCR is the slowest part)")
    ap.add_argument("--only-real", action="store_true", help="only the real clips")
    ap.add_argument(
        "--real-cadence", type=float, default=CADENCE_S, help="real clips' cadence (s; below their GOP: more frames)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    seeds = list(range(args.seeds or (2 if args.quick else 4)))
    hours = args.hours if args.hours is not None else (0.5 if args.quick else 2.0)
    started = time.monotonic()
    print(f"# evaluate_scenarios: seeds {seeds}, {hours} h per real clip, cadence {CADENCE_S} s; "
          f"{platform.processor() or platform.machine()}, load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    builders = [street_family, site_family, tamper_family] + ([] if args.skip_ocr else [ads_family])
    if args.only_real:
        builders, args.skip_ocr = [], True
    scores: list[Score] = []
    with tempfile.TemporaryDirectory(prefix="gridsight-eval-") as tmp:
        for i, build in enumerate(builders):
            t = time.monotonic()
            fam = build(seeds)
            generated = time.monotonic() - t
            result, found = run(fam, Path(tmp) / str(i))
            got = score(fam, found)
            if build is tamper_family:  # the stall pushed in while the view was off must not have opened
                leaked = sum(1 for f in found if f.code == "09006")
                for sc in got:
                    sc.note = f"09006 incidents while paused: {leaked}; cases for {MAINTENANCE}: 0"
            scores += got
            print(f"  {build.__name__}: {len(fam.cameras)} cameras, generated in {generated:.0f} s, "
                  f"analysed in {result.wall_s:.0f} s", flush=True)  # fmt: skip
        ocr = None if args.skip_ocr else phone_rate()
        real, cpu = ([], 0.0) if args.skip_real else real_clips(hours, Path(tmp) / "real", args.real_cadence)
    if real:
        print(f"  real clips: {', '.join(r['camera'] + ' ' + str(r['incidents']) for r in real)}", flush=True)
    print()
    print(table(scores, ocr, real, cpu))
    print(f"\n({time.monotonic() - started:.0f} s, load {os.getloadavg()[0]:.2f})")
    if args.json is not None:
        args.json.write_text(json.dumps({"scores": [s.__dict__ for s in scores], "ocr": ocr, "real": real,
                                         "cpu_core_share": cpu}, default=str, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
