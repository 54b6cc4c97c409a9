"""Analysis cost per camera, as % of one CPU core in real time: GridSight vs a decode-everything loop.

    python bench/analysis_cost.py [--seconds 60] [--cadence 10] [--repeat 3] [--resolutions 1080p,720p]

Every row processes the same cached H.264 street video as fast as it can and
reports CPU seconds (user + system, all threads) ÷ seconds of video. Rows are
interleaved within each repeat, so the baseline runs side by side with
GridSight under the same machine load. See bench/README.md for the columns.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import av
import cv2
import numpy as np
import yaml

from detector.analysis.gate import SceneGate
from detector.analysis.occupancy import OccupancyAnalyzer, OccupancyParams
from detector.config import Camera, load_config
from detector.ingest.health import CameraState
from detector.ingest.sources import DEFAULT_FILE_START, StreamReader, _DueDecoder
from detector.rules.engine import CameraRules
from detector.rules.taxonomy import Taxonomy
from detector.runtime.app import build
from detector.synthetic.demo import DEMO_NO_VENDING_ZONE, StreetSpec, ensure_demo_video
from detector.types import Frame, Observations

CACHE = Path(__file__).resolve().parents[1] / "var" / "bench"
#: name -> (width, height, bits/s); all 25 fps with a 2 s (50-frame) GOP
RESOLUTIONS = {"1080p": (1920, 1080, 4_000_000), "720p": (1280, 720, 2_000_000)}
Image = np.ndarray


def cpu_s() -> float:
    """CPU seconds (user + system) of this process, all its threads, plus waited-for children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        r = resource.getrusage(who)
        total += r.ru_utime + r.ru_stime
    return total


def video_for(res: str, seconds: float) -> Path:
    w, h, bitrate = RESOLUTIONS[res]
    spec = StreetSpec(width=w, height=h, fps=25, gop_s=2.0, bitrate=bitrate, duration_s=seconds,
                      stall_arrive_s=min(10.0, seconds / 6), stall_leave_s=seconds * 5 / 6)  # fmt: skip
    return ensure_demo_video(CACHE, spec)  # generated once, then reused


def write_config(folder: Path, video: Path, cadence: float, cameras: int) -> None:
    """A config dir with `cameras` identical file cameras watching the demo's no-vending zone."""
    settings = {
        "database_url": f"sqlite:///{folder / 'gridsight.db'}",
        "evidence_root": str(folder / "evidence"),
        "cache_dir": str(folder / "cache"),
        "log_level": "WARNING",
        "api_port": 0,
    }
    zone = [list(p) for p in DEMO_NO_VENDING_ZONE]
    cams = [
        {
            "id": f"bench-{i}",
            "name": f"bench {i}",
            "source": {"url": str(video), "loop": False},
            "cadence_s": cadence,
            "zones": [{"name": "sidewalk", "purpose": "no_vending", "polygon": zone}],
            "problems": ["09006"],  # road-occupying stall
            "analyzers": {"detector": {"enabled": False}},  # occupancy only: no ONNX model in this bench
        }
        for i in range(cameras)
    ]
    (folder / "settings.yaml").write_text(yaml.safe_dump(settings))
    (folder / "cameras.yaml").write_text(yaml.safe_dump({"cameras": cams}, allow_unicode=True))


def bench_camera(video: Path, cadence: float) -> tuple[Camera, Taxonomy]:
    with tempfile.TemporaryDirectory() as tmp:
        write_config(Path(tmp), video, cadence, 1)
        loaded = load_config(Path(tmp))
    return loaded.cameras[0], loaded.taxonomy


def occupancy_for(cam: Camera) -> OccupancyAnalyzer:
    """Built like `GridSight._analyzers` builds it."""
    occ = cam.analyzers.occupancy
    polys = [z.polygon for z in cam.zones if z.purpose.value != "ignore"] or None
    return OccupancyAnalyzer(OccupancyParams(work_width=occ.width, min_area=occ.min_area), mask=polys)


# ------------------------------------------------------------------ the rows


def gridsight(video: Path, cadence: float, cameras: int) -> tuple[float, int]:
    """The real app on `cameras` file cameras; returns (CPU s, frames analysed) per camera.

    Measured from the moment the readers start until every camera has ended and
    its last frame went through the pipeline; config, DB migration and API
    start-up happen before (readers held back), shutdown after.
    """
    with tempfile.TemporaryDirectory(prefix="gridsight-bench-") as tmp:
        write_config(Path(tmp), video, cadence, cameras)
        app = build(Path(tmp))
        with mock.patch.object(StreamReader, "start", lambda self: None):
            app.start()
        lock, count = threading.Lock(), {"put": 0, "done": 0}
        put, analyse = app.queues.put, app.pipeline.analyse

        def counted_put(frame: Frame, **kw: Any) -> None:
            put(frame, **kw)
            with lock:
                count["put"] += 1

        def counted_analyse(frame: Frame) -> None:
            analyse(frame)
            count["done"] += 1  # only the analysis thread writes this

        app.queues.put, app.pipeline.analyse = counted_put, counted_analyse
        c0 = cpu_s()
        try:
            for r in app.readers:
                r.start()
            while True:
                states = {h.state for h in app.healths.values()}
                if states - {CameraState.ENDED, CameraState.LIVE, CameraState.CONNECTING}:
                    raise RuntimeError(f"camera failed: {[h.snapshot() for h in app.healths.values()]}")
                if states == {CameraState.ENDED} and count["done"] == count["put"]:
                    break
                time.sleep(0.01)
            return (cpu_s() - c0) / cameras, count["done"] // cameras
        finally:
            app.stop()


def demux_only(video: Path) -> int:
    with av.open(str(video)) as c:
        for _ in c.demux(c.streams.video[0]):
            pass
    return 0


def due_decode(video: Path, cadence: float) -> list[tuple[Image, float]]:
    """Demux every packet; decode (and convert to BGR) only the due frames, as StreamReader does."""
    out: list[tuple[Image, float]] = []
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        ctx = stream.codec_context
        ctx.thread_count = 1
        dec = _DueDecoder(cadence)
        for packet in c.demux(stream):
            if packet.size:
                out += dec.feed(packet, ctx)
    return out


def analysis_only(frames: list[tuple[Image, float]], cam: Camera, taxonomy: Taxonomy) -> int:
    """What `Pipeline.analyse` runs per due frame, short of the incident manager: gate → occupancy → rules."""
    rules = CameraRules.build(cam, taxonomy)
    gate = SceneGate(cam.gate.threshold, timedelta(minutes=cam.gate.max_skip_minutes), rules.zones)
    occ, obs = occupancy_for(cam), Observations()
    for i, (image, t) in enumerate(frames):
        frame = Frame(cam.id, i, DEFAULT_FILE_START + timedelta(seconds=t), image)
        if gate.should_analyze(frame):
            obs = occ.analyze(frame)
        rules.findings(obs, frame.ts)
    return len(frames)


def decode_all(video: Path, cadence: float, occ: OccupancyAnalyzer | None = None) -> int:
    """The naive loop: decode every frame; the first one at/after each cadence slot → BGR → occupancy."""
    n, due = 0, 0.0
    with av.open(str(video)) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_count = 1
        for f in c.decode(stream):
            if occ is None or f.time is None or f.time < due - 1e-3:
                continue
            image = f.to_ndarray(format="bgr24")
            occ.analyze(Frame("baseline", n, DEFAULT_FILE_START + timedelta(seconds=f.time), image))
            n += 1
            while due <= f.time + 1e-3:
                due += cadence
    return n


# ------------------------------------------------------------------ driver


def timed(fn: Callable[..., int], *args: Any) -> tuple[float, int]:
    c0 = cpu_s()
    n = fn(*args)
    return cpu_s() - c0, n


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    la = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}, nproc {len(os.sched_getaffinity(0))}, load average {la}; Python {platform.python_version()}, "
        f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}), "
        f"OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the test videos (60-120 s)")
    ap.add_argument("--cadence", type=float, default=10.0, help="seconds of video between analyses")
    ap.add_argument("--repeat", type=int, default=3, help="runs per row; the median is reported")
    ap.add_argument("--resolutions", default="1080p,720p", help=f"comma-separated, of {', '.join(RESOLUTIONS)}")
    ap.add_argument("--cameras", type=int, default=2, help="file cameras in the GridSight app run")
    args = ap.parse_args()
    resolutions = [r.strip() for r in args.resolutions.split(",") if r.strip()]
    for r in resolutions:
        if r not in RESOLUTIONS:
            ap.error(f"unknown resolution {r!r}")

    print(f"machine: {machine()}\n", flush=True)
    videos = {r: video_for(r, args.seconds) for r in resolutions}  # generation is not measured
    cam, taxonomy = bench_camera(videos[resolutions[0]], args.cadence)
    due_frames = {r: due_decode(videos[r], args.cadence) for r in resolutions}  # input of "analysis only"

    # name -> f(resolution) -> (CPU s per camera, frames analysed per camera)
    rows: dict[str, Callable[[str], tuple[float, int]]] = {
        "gridsight": lambda r: gridsight(videos[r], args.cadence, args.cameras),
        "baseline": lambda r: timed(decode_all, videos[r], args.cadence, occupancy_for(cam)),
        "demux only": lambda r: timed(demux_only, videos[r]),
        "demux + due-frame decode": lambda r: timed(lambda: len(due_decode(videos[r], args.cadence))),
        "analysis only": lambda r: timed(analysis_only, due_frames[r], cam, taxonomy),
        "demux + decode every frame": lambda r: timed(decode_all, videos[r], args.cadence),
    }
    cpu: dict[tuple[str, str], list[float]] = {}
    frames: dict[tuple[str, str], int] = {}
    for i in range(args.repeat):  # interleaved: every row sees the same machine load
        for r in resolutions:
            for name, fn in rows.items():
                spent, frames[(r, name)] = fn(r)
                cpu.setdefault((r, name), []).append(spent)
        print(f"repeat {i + 1}/{args.repeat} done (load average {os.getloadavg()[0]:.2f})", flush=True)

    print(f"\ncadence {args.cadence:g} s, {args.seconds:g} s of 25 fps video, GOP 50, median of {args.repeat}; "
          f"GridSight: {args.cameras} cameras in one app, CPU ÷ {args.cameras}\n")  # fmt: skip
    print("| video | row | frames analysed | CPU s / camera | % of a core | min–max % | × baseline |")
    print("|---|---|---:|---:|---:|---:|---:|")
    pct = {k: [100 * c / args.seconds for c in v] for k, v in cpu.items()}
    for r in resolutions:
        base = statistics.median(pct[(r, "baseline")])
        for name in rows:
            p = pct[(r, name)]
            med = statistics.median(p)
            shown = frames[(r, name)] or "–"
            print(f"| {r} | {name} | {shown} | {statistics.median(cpu[(r, name)]):.3f} | {med:.2f} | "
                  f"{min(p):.2f}–{max(p):.2f} | {med / base:.2f} |")  # fmt: skip
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for r in resolutions:
        gs, base = statistics.median(pct[(r, "gridsight")]), statistics.median(pct[(r, "baseline")])
        print(f"gridsight {r}: {gs:.2f}% of a core per camera (baseline {base:.2f}%)")


if __name__ == "__main__":
    main()
