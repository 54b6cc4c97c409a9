"""False incidents on real fixed-camera footage, every analyzer on, with the evidence for a person to judge.

    python bench/real_footage.py [--hours H] [--cadence S] [--only NAME ...] [--out DIR] [--mirrors DIR]

The clips of bench/real_clips.yaml (where each comes from, its licence) loop through the whole
application (`tests.support.replay`: readers, gate, tamper check, every analyzer, rules,
incidents) for `--hours` of pipeline time each. Every zone purpose covers the whole frame and
every problem that a bundled model or analyzer can find is watched, so every incident is a
candidate false alarm: none of the clips holds a city-management problem. The table gives the
incidents per camera and problem with their rate per camera-day; each incident's pictures
(annotated, clean, first sighting) are copied to `--out` and listed, so a person can see what
fooled it. Clips held in a git mirror are extracted once into var/sources/clips/.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tests.support is not installed
    sys.path.insert(0, str(REPO))

from tests.conftest import SHARED_VIDEOS, write_config  # noqa: E402
from tests.support.replay import replay  # noqa: E402
from training.sources import MIRRORS, git_file  # noqa: E402

CATALOGUE = REPO / "bench" / "real_clips.yaml"
CLIPS = REPO / "var" / "sources" / "clips"
LOCAL = ZoneInfo("Asia/Shanghai")
START = "2026-03-02T18:00:00+08:00"  # evening: the night-works schedule starts within a long run
NIGHT = {"night": {"windows": [{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                "start": "22:00", "end": "06:00"}]}}  # fmt: skip
PURPOSES = ("no_vending", "sidewalk", "shop_front", "wall", "construction_site", "no_parking")
# every problem a bundled model or analyzer can find, but 09009 (a car on a whole-frame "sidewalk" of
# a car park is a right answer to a wrong zone) and 07006 (a signboard is only a problem by its permit)
PROBLEMS = ("09006", "09005", "09001", "09010", "06036", "06010", "06042", "06020", "06029", "07001", "07003",
            "08004", "08001")  # fmt: skip
PICTURES = ("annotated", "clean", "first_seen")


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    licence: str
    scene: str


@dataclass(frozen=True)
class Incident:
    camera: str
    code: str
    opened: datetime  # the camera's clock (the clip's loop time from START)
    label: str | None
    score: float
    box: tuple[float, ...]
    extras: dict[str, Any]
    pictures: tuple[Path, ...]  # copied under --out


def load_clips(mirrors: Path, names: list[str] | None = None, catalogue: Path = CATALOGUE) -> list[Clip]:
    """The catalogue's clips that are at hand (a shared file, or a mirrored one extracted and checked)."""
    out = []
    for c in yaml.safe_load(catalogue.read_text())["clips"]:
        if names and c["name"] not in names:
            continue
        path = SHARED_VIDEOS / c["shared"] if "shared" in c else _extract(c, mirrors)
        if path is None or not path.exists():
            print(f"  skipped {c['name']}: not at hand (see {catalogue.name})", file=sys.stderr)
            continue
        out.append(Clip(c["name"], path, c["licence"], " ".join(c["scene"].split())))
    return out


def _extract(c: dict[str, Any], mirrors: Path) -> Path | None:
    git = c["git"]
    path = CLIPS / f"{c['name']}{Path(git['path']).suffix}"
    if not path.exists():
        mirror = mirrors / git["repo"].replace("/", "+") / "repo"
        if not mirror.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(git_file(mirror, git["commit"], git["path"]))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != c["sha256"]:
        raise ValueError(f"{path}: sha256 {digest}, the catalogue says {c['sha256']}")
    return path


def camera(clip: Clip, cadence_s: float) -> dict[str, Any]:
    full = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    return {
        "id": clip.name, "name": clip.name, "cadence_s": cadence_s,
        "source": {"url": str(clip.path), "loop": True, "start_time": START},
        "location": {"division_code": "110107", "grid_code": "110107001002003"},  # garbage cases file themselves
        "zones": [{"name": p.replace("_", "-"), "purpose": p, "polygon": full} for p in PURPOSES],
        "problems": list(PROBLEMS), "schedules": NIGHT, "rules": {"08001": {"schedule": "night"}},
    }  # fmt: skip


def measure(clips: list[Clip], hours: float, cadence_s: float, root: Path, out: Path) -> dict[str, Any]:
    """Runs the clips together; returns per camera its hours and the incidents, pictures copied to `out`."""
    cfg = write_config(root, [camera(c, cadence_s) for c in clips], log_level="ERROR")
    result = replay(cfg, until_s=hours * 3600, timeout_s=max(3600.0, hours * 3600))
    incidents = _incidents(root / "gridsight.db", root / "evidence", out)
    per = {c.name: {"hours": result.video_s[c.name] / 3600, "paused": result.paused[c.name],
                    "frames": result.frames[c.name]} for c in clips}  # fmt: skip
    return {
        "cameras": per,
        "incidents": incidents,
        "cpu_per_camera_s": result.cpu_s / max(sum(result.video_s.values()), 1e-9),
    }


def _incidents(db: Path, evidence: Path, out: Path) -> list[Incident]:
    with sqlite3.connect(db) as con:
        rows = con.execute("select id, camera_id, problem_code, opened_at, score, box, details from incidents "
                           "order by camera_id, opened_at").fetchall()  # fmt: skip
        files = con.execute("select incident_id, kind, path from evidence").fetchall()
    found = []
    for iid, cam, code, opened, score, box, details in rows:
        pictures = []
        for kind in PICTURES:
            for _, _, rel in (f for f in files if f[0] == iid and f[1] == kind):
                dest = out / cam / f"{iid:03d}-{code}-{kind}{Path(rel).suffix}"
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(evidence / rel, dest)
                pictures.append(dest)
        d = json.loads(details)
        found.append(Incident(cam, code, datetime.fromisoformat(opened).replace(tzinfo=UTC), d.get("label"),
                              score, tuple(json.loads(box)), d.get("extras", {}), tuple(pictures)))  # fmt: skip
    return found


def report(clips: list[Clip], run: dict[str, Any], cadence_s: float) -> str:
    cams, incidents = run["cameras"], run["incidents"]
    lines = ["| clip | scene | camera-h | frames analysed | incidents by problem | per camera-day |",
             "|---|---|---:|---:|---|---:|"]  # fmt: skip
    for c in clips:
        h = cams[c.name]["hours"]
        by = Counter(i.code for i in incidents if i.camera == c.name)
        n, codes = sum(by.values()), ", ".join(f"{k} ×{v}" for k, v in sorted(by.items())) or "none"
        lines.append(f"| {c.name} | {c.scene[:70]} | {h:.2f} | {cams[c.name]['frames']} | {codes} | "
                     f"{n / h * 24 if h else 0:.1f} |")  # fmt: skip
    hours = sum(v["hours"] for v in cams.values())
    lines.append(f"| **all** | {len(clips)} cameras, cadence {cadence_s:g} s | {hours:.2f} | "
                 f"{sum(v['frames'] for v in cams.values())} | {len(incidents)} | "
                 f"**{len(incidents) / hours * 24 if hours else 0:.1f}** |")  # fmt: skip
    lines += ["", f"CPU {run['cpu_per_camera_s'] * 100:.2f} % of a core per camera (pipeline time).", ""]
    if incidents:
        lines += ["Incidents, each with its pictures (judge them):", ""]
    for i in incidents:
        people = f", people {i.extras['people']}" if "people" in i.extras else ""
        box = ", ".join(f"{v:.2f}" for v in i.box)
        lines.append(f"- {i.camera} {i.code} opened {i.opened.astimezone(LOCAL):%H:%M:%S} label {i.label} "
                     f"score {i.score:.2f}{people} box [{box}]")  # fmt: skip
        lines += [f"  - {p}" for p in i.pictures]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=1.0, help="pipeline hours per clip (looped)")
    ap.add_argument("--cadence", type=float, default=10.0, help="seconds between analyses")
    ap.add_argument("--only", action="append", help="a clip's name (repeatable; default: every clip at hand)")
    ap.add_argument("--out", type=Path, default=REPO / "var" / "real-footage", help="where the pictures go")
    ap.add_argument("--mirrors", type=Path, default=MIRRORS, help="folder of git mirrors")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    clips = load_clips(args.mirrors, args.only)
    if not clips:
        print("no clip at hand", file=sys.stderr)
        return 1
    shutil.rmtree(args.out, ignore_errors=True)
    print(f"# real footage: {len(clips)} clips × {args.hours:g} h, cadence {args.cadence:g} s, "
          f"problems {' '.join(PROBLEMS)}, every zone purpose on the whole frame", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gridsight-real-") as tmp:
        run = measure(clips, args.hours, args.cadence, Path(tmp), args.out)
    print(report(clips, run, args.cadence))
    if args.json is not None:
        args.json.write_text(json.dumps(run, default=lambda o: o.__dict__ if hasattr(o, "__dict__") else str(o),
                                        indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
