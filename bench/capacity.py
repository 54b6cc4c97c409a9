"""Capacity: how many live RTSP cameras GridSight keeps on cadence on this machine, vs a naive decode-everything loop.

    .venv/bin/python bench/capacity.py            # GridSight ladder + two baseline ladders + cost levers (~25 min)
    .venv/bin/python bench/capacity.py --quick    # fewer steps, shorter windows, no levers (~3 min)

N simulated cameras are N mounts of the real RTSP test server
(tests/support/rtsp_server.py, GStreamer, live-paced, H.264 passed through) on
127.0.0.1, serving a handful of generated street videos (detector.synthetic.demo, cached
in var/bench/). For each N, GridSight's composition root (detector.runtime.app.build →
start → run) runs in child processes for a fixed wall-clock window after a
warm-up: one worker process per core by default, sharing the cameras by their
leases as under `gridsight run --workers auto` (`--workers 1`: one process). The
parent measures CPU and memory from /proc and the children report
per-analysis latency. The same streams then feed the naive baseline (PyAV
decodes every frame, an FP32 640×640 YOLO ONNX runs on one frame per cadence).
"Cameras served" is the largest N at which every camera stayed on cadence.
See bench/README.md for the method, the columns and the findings.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import queue
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tests.support is not installed
    sys.path.insert(0, str(REPO))

import av  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from detector.ingest.sources import _DueDecoder, _seconds  # noqa: E402
from detector.synthetic.demo import DEMO_NO_VENDING_ZONE, StreetSpec, ensure_demo_video  # noqa: E402

CACHE = REPO / "var" / "bench"
MODELS = CACHE / "models"
# ultralytics exports the bench models: .venv-train where there is one, else this venv (scripts/setup dev has it)
TRAIN_PYTHON = next((p for p in [REPO / ".venv-train" / "bin" / "python"] if p.exists()), Path(sys.executable))
#: name -> (width, height, bits/s); all 25 fps
RESOLUTIONS = {"1080p": (1920, 1080, 4_000_000), "720p": (1280, 720, 2_000_000)}
FPS = 25
VIDEO_S = 60.0  # each file loops every minute (the stall arrives at 10 s and leaves at 50 s)
GOP_S = 2.0  # GOP 50
LONG_GOP_S = 12.0  # GOP 300 > cadence: the reader decodes forward from the keyframe to the due frame
DISTINCT = {"1080p": 4, "720p": 2}  # distinct files per resolution; mounts cycle through them
LONG_GOP_DISTINCT = 2
TICK = os.sysconf("SC_CLK_TCK")
BASELINE_MODEL = "yolo11n-fp32-640x640"

# ------------------------------------------------------------------ inputs: videos and models


def street_spec(res: str, seed: int, gop_s: float = GOP_S) -> StreetSpec:
    """bench/analysis_cost.py's test video (seed 0 is the very same file), with other seeds for variety."""
    w, h, bitrate = RESOLUTIONS[res]
    return StreetSpec(seed=seed, width=w, height=h, fps=FPS, gop_s=gop_s, bitrate=bitrate, duration_s=VIDEO_S,
                      stall_arrive_s=min(10.0, VIDEO_S / 6), stall_leave_s=VIDEO_S * 5 / 6)  # fmt: skip


def videos(res: str, gop_s: float = GOP_S) -> list[Path]:
    n = DISTINCT[res] if gop_s == GOP_S else LONG_GOP_DISTINCT
    out = []
    for seed in range(n):
        spec = street_spec(res, seed, gop_s)
        path = CACHE / f"street-{spec.key()}.mp4"
        if not path.exists():
            print(f"generating {res} GOP {gop_s:g} s seed {seed} (once, cached in {CACHE}) ...", flush=True)
        out.append(ensure_demo_video(CACHE, spec))
    return out


# Run by .venv-train (torch + ultralytics): random-weight yolo11n (cost only), exported as the
# runtime loads models (training.export.export_fp32: fixed input, batch 1, opset 17, no onnxslim).
_EXPORT_SCRIPT = r"""
import sys
from pathlib import Path
from training.train import offline_env
offline_env(Path("var/yolo-config"))
from ultralytics import YOLO
from training.export import export_fp32
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
pt = out / "yolo11n-random.pt"
if not pt.exists():
    YOLO("yolo11n.yaml").save(str(pt))
for size in sys.argv[2:]:
    w, h = (int(v) for v in size.split("x"))
    export_fp32(pt, out / f"yolo11n-fp32-{w}x{h}", width=w, height=h, name="bench-yolo11n", version=f"fp32-{w}x{h}")
"""


def ensure_models(names: Iterable[str]) -> None:
    """Model folders under var/bench/models/: yolo11n-{fp32,int8}-{W}x{H} (manifest.yaml + model.onnx)."""
    names = sorted(set(names))
    fp32 = sorted({n.replace("-int8-", "-fp32-") for n in names} - {p.name for p in MODELS.glob("*") if p.is_dir()})
    if fp32:
        if not TRAIN_PYTHON.exists():
            raise SystemExit(f"{TRAIN_PYTHON} missing: needed once to export {fp32} (scripts/setup-train?)")
        print(f"exporting {', '.join(fp32)} with ultralytics (random weights; once) ...", flush=True)
        sizes = [n.rsplit("-", 1)[1] for n in fp32]
        subprocess.run([str(TRAIN_PYTHON), "-c", _EXPORT_SCRIPT, str(MODELS), *sizes], cwd=REPO, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    for name in names:
        if "-int8-" in name and not (MODELS / name / "model.onnx").exists():
            from training.export import quantize_int8  # onnx + onnxruntime.quantization: only when needed

            print(f"quantizing {name} (static INT8, QDQ, calibrated on street frames; once) ...", flush=True)
            quantize_int8(MODELS / name.replace("-int8-", "-fp32-"), MODELS / name, calibration_frames())


def calibration_frames(n: int = 16) -> list[Path]:
    folder = CACHE / "calibration"
    folder.mkdir(parents=True, exist_ok=True)
    out = sorted(folder.glob("*.png"))
    if len(out) >= n:
        return out[:n]
    import cv2

    with av.open(str(videos("1080p")[0])) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % 75 == 0:
                path = folder / f"frame-{i:05d}.png"
                cv2.imwrite(str(path), f.to_ndarray(format="bgr24"))
                out.append(path)
            if len(out) >= n:
                break
    return sorted(out)[:n]


# ------------------------------------------------------------------ what one step runs


@dataclass(frozen=True)
class Variant:
    """One row's GridSight configuration (or the baseline's)."""

    name: str
    kind: str = "gridsight"  # or "baseline"
    res: str = "1080p"
    gop_s: float = GOP_S
    gate: bool = True
    model: str | None = None  # model folder under var/bench/models/; None: occupancy only (no detector)
    own_mounts: bool = False  # one RTSP mount per camera, whatever --mounts says
    stagger: bool = False  # readers start at random moments within one cadence, not all at once
    opencv: bool = False  # baseline: OpenCV's VideoCapture.read() loop instead of PyAV
    workers: int = 1  # camera worker processes (`gridsight run --workers N`): cameras spread by the leases


GRIDSIGHT = Variant("gridsight")
# The naive loop the issue names: OpenCV reads (decodes + converts to BGR) every frame, a detector every cadence.
BASELINE = Variant("baseline: OpenCV read() loop + FP32 640×640", kind="baseline", model=BASELINE_MODEL, opencv=True)
# A stronger one: PyAV decodes every frame but converts only the analysed ones (ultralytics' grab/retrieve).
PYAV_BASELINE = Variant("baseline: PyAV decode-all + FP32 640×640", kind="baseline", model=BASELINE_MODEL)
LEVERS: dict[str, Variant] = {
    "fp32": Variant("+ detector FP32 640×640", model="yolo11n-fp32-640x640"),
    "gate": Variant("+ detector FP32 640×640, gate off", model="yolo11n-fp32-640x640", gate=False),
    "int8": Variant("+ detector INT8 640×640", model="yolo11n-int8-640x640"),
    "rect": Variant("+ detector FP32 640×384 (rectangular)", model="yolo11n-fp32-640x384"),
    "forward": Variant(f"decode-forward (GOP {LONG_GOP_S:g} s > cadence)", gop_s=LONG_GOP_S),
    "720p": Variant("gridsight 720p", res="720p"),
    "mounts": Variant("gridsight, one mount per camera", own_mounts=True),
    "demux": Variant("profile: PyAV RTSP demux only, nothing decoded", kind="demux"),
    "stagger": Variant("gridsight, readers started spread over one cadence", stagger=True),
}


def camera_config(i: int, url: str, v: Variant, cadence: float) -> dict[str, Any]:
    return {
        "id": f"cap-{i:03d}",
        "name": f"capacity {i}",
        "source": {"url": url, "transport": "tcp"},
        "cadence_s": cadence,
        "zones": [{"name": "sidewalk", "purpose": "no_vending", "polygon": [list(p) for p in DEMO_NO_VENDING_ZONE]}],
        "problems": ["09006"],  # road-occupying stall: the occupancy analyzer runs
        "analyzers": {
            "occupancy": {"enabled": True},
            "detector": {"enabled": v.model is not None, "model": v.model or "none"},
        },
        "gate": {"enabled": v.gate},
    }


def write_config(folder: Path, urls: list[str], v: Variant, cadence: float) -> Path:
    cfg = folder / "config"
    cfg.mkdir(parents=True)
    settings = {
        "database_url": f"sqlite:///{folder / 'gridsight.db'}",
        "evidence_root": str(folder / "evidence"),
        "cache_dir": str(folder / "cache"),
        "models_dir": str(MODELS if v.model else folder / "models"),
        "log_level": "WARNING",
        "api_port": 0,
    }
    if v.workers > 1:  # leases renewed every 5 s, so the workers settle their shares within the warm-up
        settings["instance"] = {"lease_s": 15}
    cams = [camera_config(i, u, v, cadence) for i, u in enumerate(urls)]
    (cfg / "settings.yaml").write_text(yaml.safe_dump(settings))
    (cfg / "cameras.yaml").write_text(yaml.safe_dump({"cameras": cams}, allow_unicode=True))
    return cfg


# ------------------------------------------------------------------ child: GridSight


class TimedDueDecoder(_DueDecoder):
    """The reader's own `_DueDecoder`, counting frames and the reader's backlog on the way.

    Backlog: how far the reader fell behind the live stream during the window,
    i.e. the growth of (wall clock − PTS) above its minimum. A reader that
    cannot keep up lets packets pile up in TCP and the server, and this grows.
    """

    live: ClassVar[dict[str, TimedDueDecoder]] = {}

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.camera = threading.current_thread().name.removeprefix("reader-")
        TimedDueDecoder.live[self.camera] = self
        self.reset()

    def reset(self) -> None:
        self.frames, self.last_pts, self.d_min, self.backlog = 0, -math.inf, math.inf, 0.0

    def feed(self, packet: av.Packet, ctx: av.CodecContext) -> list[tuple[np.ndarray, float]]:
        raw = _seconds(packet)
        if raw is not None and raw > self.last_pts:  # one count per frame (pts), however it is packetised
            self.last_pts = raw
            self.frames += 1
            d = time.monotonic() - raw
            if d < self.d_min:
                self.d_min = d
            elif d - self.d_min > self.backlog:
                self.backlog = d - self.d_min
        return super().feed(packet, ctx)


class GilProbe(threading.Thread):
    """Sleeps 20 ms at a time and records how much later than asked it runs again.

    The delay is the time to get a CPU *and* the GIL back: with the machine not
    saturated, a delay of several ms means the process's threads queue for the GIL.
    """

    def __init__(self) -> None:
        super().__init__(name="gil-probe", daemon=True)
        self.delays: list[float] = []

    def run(self) -> None:
        while True:
            t = time.perf_counter()
            time.sleep(0.02)
            self.delays.append(time.perf_counter() - t - 0.02)


def child_gridsight(spec: dict[str, Any]) -> None:
    from detector.ingest import sources
    from detector.ingest.health import CameraState
    from detector.runtime.app import build

    sources._DueDecoder = TimedDueDecoder  # type: ignore[misc]  # read by StreamReader._session at connect
    workers = spec.get("workers", 1)
    # one of `workers` processes, as `gridsight run --workers N` starts them (minus the supervisor's API and filer)
    app = build(Path(spec["config"]), role="worker", peers=workers) if workers > 1 else build(Path(spec["config"]))
    if spec.get("stagger"):  # each reader starts at a random moment within one cadence (see --levers stagger)
        start_reader = sources.StreamReader.start
        rng = random.Random(0)

        def staggered(self: Any) -> None:
            threading.Timer(rng.uniform(0, spec["stagger"]), start_reader, args=(self,)).start()

        sources.StreamReader.start = staggered  # type: ignore[method-assign]
    app.start()
    probe = GilProbe()
    probe.start()
    records: dict[str, list[tuple[float, float]]] = {}
    measuring = threading.Event()
    analyse = app.pipeline.analyse

    def timed_analyse(frame: Any) -> None:  # only the analysis thread calls this
        analyse(frame)
        if measuring.is_set():
            ts = frame.ts.timestamp()  # live source: wall time the frame's packet was read
            records.setdefault(frame.camera_id, []).append((ts, time.time() - ts))

    app.pipeline.analyse = timed_analyse  # type: ignore[method-assign]
    t0 = time.monotonic()
    while True:
        rts = list(app.pipeline.runtimes())
        ready = len(rts) >= spec["n"] // workers and all(
            rt.health.state is CameraState.LIVE and rt.frames > 0 for rt in rts
        )
        waited = time.monotonic() - t0
        if (ready and waited >= spec["warmup_min"]) or waited >= spec["warmup_max"]:
            break
        time.sleep(0.2)

    def counters() -> dict[str, dict[str, float]]:
        return {rt.camera.id: {"frames": rt.frames, "analyses": rt.analyses, "errors": rt.errors,
                               "dropped": rt.health.frames_dropped, "reconnects": rt.health.reconnects,
                               "decode_s": rt.health.decode_seconds, "analysis_s": rt.analysis_seconds}
                for rt in app.pipeline.runtimes()}  # fmt: skip

    ready_at = time.monotonic()
    print("READY", flush=True)
    sys.stdin.readline()  # every process starts its window together
    for d in list(TimedDueDecoder.live.values()):
        d.reset()
    probe.delays.clear()
    before = counters()
    measuring.set()
    start = time.time()
    print("START", flush=True)
    app.run(spec["seconds"])
    end = time.time()
    measuring.clear()
    after = counters()
    print("END", flush=True)
    sys.stdin.readline()  # the parent samples /proc first
    cams: dict[str, Any] = {}
    for rt in app.pipeline.runtimes():
        cid = rt.camera.id
        dec = TimedDueDecoder.live.get(cid)
        cams[cid] = {k: after[cid][k] - before.get(cid, {}).get(k, 0) for k in after[cid]}  # (a camera taken over)
        cams[cid] |= {"state": rt.health.state.value, "frames_in": dec.frames if dec else 0,
                      "backlog_s": dec.backlog if dec else math.inf, "records": records.get(cid, [])}  # fmt: skip
    rings = [r.ring for r in app.readers if getattr(r, "ring", None) is not None]
    ring_packets = [p.packet.size for ring in rings for p in ring.packets]
    images = [rt.last_image.nbytes for rt in app.pipeline.runtimes() if rt.last_image is not None]
    queued = [f.image.nbytes for q in list(app.queues._queues.values()) for f in list(q)]
    result = {
        "start": start, "end": end, "warmup_s": ready_at - t0,
        "cameras": cams,
        "threads": {t.native_id: t.name for t in threading.enumerate()},
        "detectors": len(app._detectors),
        "gil_wait_ms": [1000 * float(x) for x in np.quantile(probe.delays or [math.nan], [0.5, 0.95])],
        "memory": {"ring_bytes": sum(ring_packets), "ring_packets": len(ring_packets), "rings": len(rings),
                   "last_image_bytes": sum(images), "queued_image_bytes": sum(queued)},
    }  # fmt: skip
    Path(spec["out"]).write_text(json.dumps(result))
    app.stop()


# ------------------------------------------------------------------ child: the naive baseline


class NaiveCamera(threading.Thread):
    """What one camera costs without GridSight: decode every frame; every cadence, BGR → detector.

    Due slots are fixed in wall time (first frame + k × cadence); the first
    frame decoded at or after a slot is analysed, inline, in the decode loop.
    """

    def __init__(
        self, cid: str, url: str, model: Any, cadence: float, stop: threading.Event, opencv: bool = False
    ) -> None:
        """`model` None: demux only (the receive + demux floor every reader pays, nothing decoded)."""
        super().__init__(name=f"naive-{cid}", daemon=True)
        self.cid, self.url, self.model, self.cadence, self.stop_event = cid, url, model, cadence, stop
        self.opencv = opencv
        self.records: list[tuple[float, float]] = []
        self.analyses, self.error = 0, ""
        self.measuring = False
        self.reset()

    def reset(self) -> None:
        self.frames, self.last_pts, self.d_min, self.backlog = 0, -math.inf, math.inf, 0.0
        self.records = []

    def run(self) -> None:
        wall = time.time() - time.monotonic()
        try:
            due: float | None = None
            for t, image in self._opencv_frames() if self.opencv else self._pyav_frames():
                if self.stop_event.is_set():
                    return
                now = time.monotonic()
                if t is not None and t > self.last_pts:
                    self.last_pts = t
                    self.frames += 1
                    d = now - t
                    if d < self.d_min:
                        self.d_min = d
                    elif d - self.d_min > self.backlog:
                        self.backlog = d - self.d_min
                due = now if due is None else due
                if now < due:
                    continue
                if self.model is None:  # demux only: "analysed" means "seen", for the on-time check
                    self.analyses += 1
                    if self.measuring:
                        self.records.append((wall + now, 0.0))
                    while due <= now:
                        due += self.cadence
                    continue
                self.model.predict([image()])
                self.analyses += 1
                if self.measuring:
                    self.records.append((wall + now, time.monotonic() - now))
                while due <= now:
                    due += self.cadence
        except Exception as e:  # report, do not hide: the camera then counts as not served
            self.error = f"{type(e).__name__}: {e}"

    def _pyav_frames(self) -> Iterator[tuple[float | None, Callable[[], np.ndarray]]]:
        """(PTS s, BGR on demand) of every frame; demux only (no image) without a model."""
        with av.open(self.url, options={"rtsp_transport": "tcp"}, timeout=(10.0, 10.0)) as c:
            stream = c.streams.video[0]
            stream.codec_context.thread_count = 1
            for f in c.decode(stream) if self.model else c.demux(stream):
                yield (f.time, lambda f=f: f.to_ndarray(format="bgr24")) if self.model else (_seconds(f), np.empty)

    def _opencv_frames(self) -> Iterator[tuple[float | None, Callable[[], np.ndarray]]]:
        """Every frame as `cv2.VideoCapture.read()` gives it (decoded and converted to BGR), OpenCV's defaults."""
        import cv2

        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG)  # TCP: OPENCV_FFMPEG_CAPTURE_OPTIONS, set by the parent
        try:
            if not cap.isOpened():
                raise RuntimeError(f"OpenCV cannot open {self.url}")
            while True:
                ok, image = cap.read()
                if not ok:
                    raise RuntimeError("OpenCV read() failed")
                yield cap.get(cv2.CAP_PROP_POS_MSEC) / 1000, lambda image=image: image
        finally:
            cap.release()


def child_baseline(spec: dict[str, Any]) -> None:
    from detector.analysis.onnx_detector import OnnxModel

    # one session (1 thread) shared by all cameras, as GridSight does; no model: demux only
    model = OnnxModel(MODELS / spec["model"]) if spec.get("model") else None
    stop = threading.Event()
    cams = [NaiveCamera(f"cap-{i:03d}", u, model, spec["cadence"], stop, spec.get("opencv", False))
            for i, u in enumerate(spec["urls"])]  # fmt: skip
    for c in cams:
        c.start()
    t0 = time.monotonic()
    while True:
        waited = time.monotonic() - t0
        if (all(c.analyses for c in cams) and waited >= spec["warmup_min"]) or waited >= spec["warmup_max"]:
            break
        time.sleep(0.2)
    print("READY", flush=True)
    sys.stdin.readline()
    for c in cams:
        c.reset()
        c.measuring = True
    start = time.time()
    print("START", flush=True)
    time.sleep(spec["seconds"])
    end = time.time()
    for c in cams:
        c.measuring = False
    print("END", flush=True)
    sys.stdin.readline()  # the parent samples /proc first
    result = {
        "start": start, "end": end, "warmup_s": waited,
        "cameras": {c.cid: {"state": "live" if c.is_alive() and not c.error else f"dead: {c.error}",
                            "frames_in": c.frames, "backlog_s": c.backlog, "records": list(c.records),
                            "errors": int(bool(c.error)), "dropped": 0, "reconnects": 0} for c in cams},
        "threads": {t.native_id: t.name for t in threading.enumerate()},
        "memory": {},
    }  # fmt: skip
    Path(spec["out"]).write_text(json.dumps(result))
    stop.set()
    sys.stdout.flush()
    os._exit(0)  # daemon decode threads may sit in a socket read; nothing to clean up


# ------------------------------------------------------------------ /proc


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def task_cpu(pid: int) -> dict[int, float]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def task_waits(pid: int) -> dict[int, float]:
    """Seconds each thread spent runnable but waiting for a CPU (run queue; /proc/.../schedstat)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
    return out


def task_names(pid: int) -> dict[int, str]:
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out[int(task.name)] = (task / "comm").read_text().strip()
        except OSError:
            continue
    return out


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in kB, Threads."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads"):
            out[key] = int(value.split()[0])
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, of which niced) since boot."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / TICK, nice / TICK


def background_jobs() -> list[str]:
    """Other busy processes worth naming (training jobs, test runs), by command line."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            nice = int((p / "stat").read_text().rsplit(")", 1)[1].split()[16])
        except (OSError, IndexError, ValueError):
            continue
        if "train run" in cmd or "pytest" in cmd:
            out.append(f"pid {p.name} nice {nice}: {cmd[:110]}")
    return out


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return math.inf


# ------------------------------------------------------------------ parent: one step


@dataclass
class Step:
    variant: Variant
    n: int
    window_s: float = 0.0
    ok: bool = False
    why: list[str] = field(default_factory=list)
    cpu_pct_per_cam: float = math.nan  # % of one core
    mounts: int = 0  # RTSP mounts serving the n cameras (clients of a mount share its stream)
    server_pct: float = math.nan  # RTSP server process, % of one core, during the window
    server_idle_pct: float = math.nan  # the same before any client connected: the producers alone
    rss_mb: float = math.nan
    hwm_mb: float = math.nan
    server_rss_mb: float = math.nan
    threads: int = 0
    lat_p50: float = math.nan
    lat_p95: float = math.nan
    lat_max: float = math.nan
    bound_max: float = math.nan  # detection-latency bound, worst camera
    backlog_max: float = math.nan
    fps_min: float = math.nan
    analyses_per_cam: float = math.nan
    models_ran_pct: float = math.nan  # gated analyses / analysed frames
    others_cores: float = math.nan  # CPU the rest of the machine used during the window
    busy_cores: float = math.nan  # the whole machine
    niced_cores: float = math.nan
    load: str = ""
    warmup_s: float = math.nan
    #: per analysed frame: wall (rt.analysis_seconds), CPU and run-queue wait of the analysis thread, ms
    analysis_ms: tuple[float, float, float] = (math.nan, math.nan, math.nan)
    thread_census: dict[str, int] = field(default_factory=dict)
    gil_wait_ms: tuple[float, float] = (math.nan, math.nan)  # GilProbe p50, p95
    cpu_groups: dict[str, float] = field(default_factory=dict)  # % of a core per camera, by thread group
    memory: dict[str, float] = field(default_factory=dict)


DECODE_GROUP = "  of which due-frame decode + BGR (thread time)"


def thread_group(name: str) -> str:
    if name.startswith(("reader-", "naive-")):
        return "readers (RTSP receive, demux, decode)"
    return {"analysis": "analysis thread", "api": "API server", "MainThread": "main (run loop: health saves)"}.get(
        name, "other threads"
    )


class Children:
    """The measured processes of one step: one, or `workers` GridSight worker processes, in lockstep.

    Each prints READY after its warm-up and waits; all then get "go" and start
    their windows together (START ... END), and write their results on the next "go".
    """

    def __init__(self, folder: Path, v: Variant, spec: dict[str, Any], args: argparse.Namespace) -> None:
        k = v.workers if v.kind == "gridsight" else 1
        self.outs = [str(folder / f"result-{i}.json") for i in range(k)]
        self.log = (folder / "child.log").open("w")
        env = os.environ | ({"MALLOC_ARENA_MAX": str(args.malloc_arenas)} if args.malloc_arenas else {})
        if k > 1:
            env["OMP_NUM_THREADS"] = "1"  # as the supervisor starts its workers
        if v.opencv:
            env["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "rtsp_transport;tcp"
        self.procs: list[subprocess.Popen[str]] = []
        self.lines: list[queue.Queue[str]] = []
        for i in range(k):
            (folder / f"spec-{i}.json").write_text(json.dumps({**spec, "out": self.outs[i], "workers": k}))
            p = subprocess.Popen([sys.executable, __file__, "--child", v.kind, str(folder / f"spec-{i}.json")],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                 cwd=REPO, env=env)  # fmt: skip
            q: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda p=p, q=q: [q.put(ln.strip()) for ln in p.stdout], daemon=True).start()  # type: ignore[union-attr]
            self.procs.append(p)
            self.lines.append(q)
        self.folder = folder
        self.said = [""] * k  # each process's last line

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    @property
    def exited(self) -> bool:
        return any(p.poll() is not None for p in self.procs)

    def wait_all(self, word: str, timeout: float) -> bool:
        """Each process's next line is `word` (within `timeout` in all)."""
        end = time.monotonic() + timeout
        for i, (p, q) in enumerate(zip(self.procs, self.lines, strict=True)):
            while self.said[i] != word:
                if time.monotonic() > end or (p.poll() is not None and q.empty()):
                    return False
                try:
                    self.said[i] = q.get(timeout=0.5)
                except queue.Empty:
                    pass
        return True

    def send(self, line: str) -> None:
        for p in self.procs:
            p.stdin.write(line + "\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]

    def wait_exit(self, timeout: float) -> str | None:
        try:
            codes = [p.wait(timeout=timeout) for p in self.procs]
        except subprocess.TimeoutExpired:
            return "child did not stop"
        return next((f"child exited with {c}" for c in codes if c != 0), None)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.log.close()

    def log_tail(self) -> str:
        return (self.folder / "child.log").read_text()[-3000:]


def tasks(read: Any, pids: list[int]) -> dict[int, Any]:
    """A per-thread /proc reading over several processes (thread ids are unique machine-wide)."""
    return {tid: x for pid in pids for tid, x in read(pid).items()}


def status_sum(pids: list[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for pid in pids:
        for k, x in proc_status(pid).items():
            out[k] = out.get(k, 0) + x
    return out


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The workers' results as one: their common window, every camera once (the one that analysed it most)."""
    if len(results) == 1:
        return results[0]
    cams: dict[str, Any] = {}
    for r in results:
        for cid, c in r["cameras"].items():
            if cid not in cams or len(c["records"]) > len(cams[cid]["records"]):
                cams[cid] = c
    memory: dict[str, float] = {}
    for r in results:
        for k, x in r["memory"].items():
            memory[k] = memory.get(k, 0) + x
    return {
        "start": max(r["start"] for r in results), "end": min(r["end"] for r in results),
        "warmup_s": max(r["warmup_s"] for r in results), "cameras": cams,
        "threads": {k: x for r in results for k, x in r["threads"].items()},
        "detectors": sum(r.get("detectors", 0) for r in results),
        "gil_wait_ms": [max(r["gil_wait_ms"][i] for r in results) for i in (0, 1)],
        "memory": memory,
    }  # fmt: skip


def run_step(v: Variant, n: int, files: list[Path], args: argparse.Namespace, window: float) -> Step:
    from tests.support.rtsp import RtspServer

    step = Step(v, n, window)
    step.mounts = min(n, args.mounts) if args.mounts > 0 and not v.own_mounts else n
    mounts = {f"cam{j}": files[j % len(files)] for j in range(step.mounts)}
    with tempfile.TemporaryDirectory(prefix="gridsight-capacity-") as tmp, \
            RtspServer(mounts, startup_timeout=60 + n) as srv:  # fmt: skip
        folder = Path(tmp)
        spid = srv._proc.pid  # type: ignore[union-attr]
        s0 = proc_cpu(spid)
        time.sleep(args.server_idle)
        step.server_idle_pct = 100 * (proc_cpu(spid) - s0) / args.server_idle
        urls = [srv.url(f"cam{i % step.mounts}") for i in range(n)]
        spec: dict[str, Any] = {"n": n, "seconds": window, "cadence": args.cadence,
                                "warmup_min": args.warmup, "warmup_max": args.warmup + 30 + 0.3 * n}  # fmt: skip
        if v.kind == "gridsight":
            spec["config"] = str(write_config(folder, urls, v, args.cadence))
            spec["stagger"] = args.cadence if v.stagger else 0
        else:
            spec |= {"urls": urls, "model": v.model, "opencv": v.opencv}
        procs = Children(folder, v, spec, args)
        try:
            if not procs.wait_all("READY", spec["warmup_max"] + 60):
                step.why.append("did not start (see child log below)")
                print(procs.log_tail(), file=sys.stderr)
                return step
            procs.send("go")
            if not procs.wait_all("START", 30):
                step.why.append("did not start its window")
                return step
            pids = procs.pids
            c0, t0, s0, (m0, n0) = sum(map(proc_cpu, pids)), tasks(task_cpu, pids), proc_cpu(spid), machine_cpu()
            q0 = tasks(task_waits, pids)
            w0 = time.monotonic()
            la0 = os.getloadavg()[0]
            peak: dict[str, int] = {}
            ended = False
            while not ended:  # RSS and threads sampled every 2 s while the window runs
                ended = procs.wait_all("END", 2.0) or procs.exited
                if not ended:
                    st = status_sum(pids)
                    peak = {k: max(peak.get(k, 0), st.get(k, 0)) for k in st}
                    peak["server"] = max(peak.get("server", 0), proc_status(spid).get("VmRSS", 0))
            c1, t1, s1, (m1, n1) = sum(map(proc_cpu, pids)), tasks(task_cpu, pids), proc_cpu(spid), machine_cpu()
            q1 = tasks(task_waits, pids)
            wall = time.monotonic() - w0
            names = tasks(task_names, pids)
            st = status_sum(pids)
            step.load = f"{la0:.1f}→{os.getloadavg()[0]:.1f}"
            procs.send("go")
            if bad := procs.wait_exit(90):
                step.why.append(bad)
        finally:
            procs.close()
            logs = CACHE / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            slug = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in v.name)
            shutil.copyfile(folder / "child.log", logs / f"{slug}-{v.res}-{n}.log")
        results = [Path(f) for f in procs.outs]
        if not all(f.exists() for f in results):
            step.why.append("no result")
            print(procs.log_tail(), file=sys.stderr)
            return step
        res = merge([json.loads(f.read_text()) for f in results])
    window = res["end"] - res["start"]
    step.window_s = window
    step.warmup_s = res["warmup_s"]
    step.cpu_pct_per_cam = 100 * (c1 - c0) / wall / n
    step.server_pct = 100 * (s1 - s0) / wall
    step.others_cores = ((m1 - m0) - (c1 - c0) - (s1 - s0)) / wall
    step.busy_cores = (m1 - m0) / wall
    step.niced_cores = (n1 - n0) / wall
    step.rss_mb, step.hwm_mb = st.get("VmRSS", 0) / 1024, st.get("VmHWM", 0) / 1024
    step.server_rss_mb = peak.get("server", 0) / 1024
    step.threads = max(peak.get("Threads", 0), st.get("Threads", 0))
    pynames = {int(k): name for k, name in res["threads"].items()}
    groups: dict[str, float] = {}
    waits: dict[str, float] = {}
    census: dict[str, int] = {}
    for tid, cpu in t1.items():
        name = pynames.get(tid) or f"native '{names.get(tid, '?')}'"
        g = thread_group(name)
        groups[g] = groups.get(g, 0.0) + cpu - t0.get(tid, 0.0)
        waits[g] = waits.get(g, 0.0) + q1.get(tid, 0.0) - q0.get(tid, 0.0)
        key = "reader-*" if name.startswith("reader-") else "naive-*" if name.startswith("naive-") else name
        census[key] = census.get(key, 0) + 1
    step.thread_census = dict(sorted(census.items(), key=lambda kv: -kv[1]))
    step.cpu_groups = {g: 100 * s / wall / n for g, s in sorted(groups.items(), key=lambda kv: -kv[1])}
    analysed = sum(c.get("frames", 0) for c in res["cameras"].values())
    if analysed and v.kind == "gridsight":
        step.analysis_ms = (1000 * sum(c["analysis_s"] for c in res["cameras"].values()) / analysed,
                            1000 * groups.get("analysis thread", math.nan) / analysed,
                            1000 * waits.get("analysis thread", math.nan) / analysed)  # fmt: skip
        step.gil_wait_ms = tuple(res["gil_wait_ms"])
    cams = res["cameras"]
    if v.kind == "gridsight":
        if v.model and not res["detectors"]:
            step.why.append(f"detector {v.model} not loaded (see the child's log)")
        dec = sum(c["decode_s"] for c in cams.values())
        step.cpu_groups[DECODE_GROUP] = 100 * dec / wall / n
        mem = res["memory"]
        step.memory = {"ring MB": mem["ring_bytes"] / 2**20, "ring packets": mem["ring_packets"],
                       "last_image MB": mem["last_image_bytes"] / 2**20,
                       "queued frames MB": mem["queued_image_bytes"] / 2**20}  # fmt: skip
        frames = sum(c["frames"] for c in cams.values())
        step.models_ran_pct = 100 * sum(c["analyses"] for c in cams.values()) / frames if frames else math.nan
    judge(step, cams, res["start"], res["end"], args.cadence)
    return step


LATENCY_SLACK_S = 5.0  # the target: detection latency ≤ cadence + 5 s


def judge(step: Step, cams: dict[str, Any], start: float, end: float, cadence: float) -> None:
    """A camera is on time when its detection-latency bound stays ≤ cadence + 5 s, it receives ≥ 97% of the
    stream's frames, and nothing was dropped, reconnected or failed (bench/README.md, "On time")."""
    limit = cadence + LATENCY_SLACK_S
    window = end - start
    lats: list[float] = []
    bounds, backlogs, fps, counts = [], [], [], []
    bad: dict[str, list[str]] = {}
    for cid, c in cams.items():
        recs = sorted(c["records"])  # (frame arrival, epoch s; arrival → analysis done, s)
        lats += [lat for _, lat in recs]
        counts.append(len(recs))
        fps.append(c["frames_in"] / window)
        backlogs.append(c["backlog_s"])
        # An event just after analysed frame k shows in frame k+1 and is known lat(k+1) after that frame
        # arrived, plus however far the reader had fallen behind the live stream.
        spans = [b[0] - a[0] + b[1] for a, b in itertools.pairwise(recs)]
        bound = max(spans) + c["backlog_s"] if spans else math.inf
        # the window's edges too, so that a camera that stops being analysed is late
        edges = [recs[0][0] + recs[0][1] - start, end - (recs[-1][0] + recs[-1][1])] if recs else [math.inf]
        bounds.append(bound)
        why = []
        if not str(c["state"]).startswith("live"):
            why.append(f"not live ({c['state']})")
        if not recs:
            why.append("never analysed")
        elif bound > limit or max(edges) > limit:
            why.append(f"late (> {limit:g} s)")
        if c["frames_in"] < 0.97 * FPS * window:
            why.append("< 97% of frames received")
        why += [k for k in ("dropped", "reconnects", "errors") if c.get(k)]
        for w in why:
            bad.setdefault(w, []).append(cid)
    step.ok = not bad and not step.why
    step.why += [f"{w}: {len(ids)}/{len(cams)} cameras" for w, ids in bad.items()]
    if lats:
        step.lat_p50, step.lat_p95 = (float(x) for x in np.quantile(lats, [0.5, 0.95]))
        step.lat_max = max(lats)
    finite = [b for b in bounds if math.isfinite(b)]
    step.bound_max = max(bounds) if bounds else math.nan
    if finite and len(finite) < len(bounds):
        step.bound_max = math.inf
    step.backlog_max = max(backlogs) if backlogs else math.nan
    step.fps_min = min(fps) if fps else math.nan
    step.analyses_per_cam = statistics.mean(counts) if counts else math.nan


# ------------------------------------------------------------------ driver


def ladder(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    mem = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemT"))
    return (f"{model}, {os.cpu_count()} CPUs, {mem / 2**20:.0f} GiB; Python {platform.python_version()}, "
            f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))})")  # fmt: skip


def fmt(x: float, spec: str = ".2f") -> str:
    if isinstance(x, float) and math.isnan(x):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, spec)


class Ladder:
    """Steps of one variant at increasing N, up to the first that is not on time."""

    def __init__(self, v: Variant, ns: list[int], files: list[Path], window: float) -> None:
        self.v, self.ns, self.files, self.window = v, ns, files, window
        self.steps: list[Step] = []

    @property
    def done(self) -> bool:
        return len(self.steps) >= len(self.ns) or bool(self.steps and not self.steps[-1].ok)

    def next(self, args: argparse.Namespace) -> None:
        v, n, last = self.v, self.ns[len(self.steps)], self.steps[-1] if self.steps else None
        if last is not None and not math.isnan(last.rss_mb):  # memory guard: this machine is shared
            need = 1.3 * (last.rss_mb + last.server_rss_mb) / last.n * n
            if need > 0.85 * mem_available_mb():
                self.steps.append(Step(v, n, why=[f"skipped: needs ~{need:.0f} MB, {mem_available_mb():.0f} MB free"]))
                print(f"  {v.name} N={n}: {self.steps[-1].why[0]}", flush=True)
                return
        t = time.monotonic()
        step = run_step(v, n, self.files, args, self.window)
        self.steps.append(step)
        print(f"  {v.name} N={n}: {'on time' if step.ok else 'NOT on time'}"
              f"{'' if step.ok else ' (' + '; '.join(step.why) + ')'}; "
              f"CPU {fmt(step.cpu_pct_per_cam)}% of a core/camera, RSS {fmt(step.rss_mb, '.0f')} MB, "
              f"bound {fmt(step.bound_max, '.1f')} s, analysis {fmt(step.analysis_ms[0], '.0f')} ms wall / "
              f"{fmt(step.analysis_ms[1], '.0f')} ms CPU, GIL probe p95 {fmt(step.gil_wait_ms[1], '.1f')} ms, "
              f"others {fmt(step.others_cores)} cores, "
              f"{time.monotonic() - t:.0f} s", flush=True)  # fmt: skip


def run_ladders(ladders: list[Ladder], args: argparse.Namespace) -> None:
    """Interleaved (one step of each in turn), so that all see the machine's load of the same minutes."""
    while not all(lad.done for lad in ladders):
        for lad in ladders:
            if not lad.done:
                lad.next(args)


def unique(steps: list[Step]) -> list[Step]:
    return list({id(s): s for s in steps}.values())


def served(steps: list[Step]) -> tuple[int, bool]:
    """Largest N on time below the first failure; and whether it is only a lower bound (nothing failed)."""
    best = 0
    for s in steps:
        if not s.ok:
            return best, False
        best = s.n
    return best, True


TABLE_HEAD = (
    "| row | N | on time | CPU % of a core / camera | RTSP server % of a core (no clients, mounts) "
    "| RSS MB total / per camera | threads | frames/s min | analyses / camera | models ran "
    "| latency p50 / p95 / max s | detection bound s | backlog s | analysis ms wall / CPU / run queue "
    "| GIL probe ms p50 / p95 | others' CPU (niced) cores | load avg |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
)


def table_row(s: Step) -> str:
    on = "yes" if s.ok else "**no**: " + "; ".join(s.why)
    per = s.rss_mb / s.n if s.n else math.nan
    ran = fmt(s.models_ran_pct, ".0f") + "%" if not math.isnan(s.models_ran_pct) else "–"
    return (f"| {s.variant.name} {s.variant.res} | {s.n} | {on} | {fmt(s.cpu_pct_per_cam)} | "
            f"{fmt(s.server_pct, '.0f')} ({fmt(s.server_idle_pct, '.0f')}, {s.mounts}) | "
            f"{fmt(s.rss_mb, '.0f')} / {fmt(per, '.1f')} | {s.threads or '–'} | {fmt(s.fps_min, '.1f')} | "
            f"{fmt(s.analyses_per_cam, '.1f')} | {ran} | "
            f"{fmt(s.lat_p50)} / {fmt(s.lat_p95)} / {fmt(s.lat_max)} | {fmt(s.bound_max, '.1f')} | "
            f"{fmt(s.backlog_max)} | {fmt(s.analysis_ms[0], '.0f')} / {fmt(s.analysis_ms[1], '.0f')} / "
            f"{fmt(s.analysis_ms[2], '.0f')} | "
            f"{fmt(s.gil_wait_ms[0], '.1f')} / {fmt(s.gil_wait_ms[1], '.1f')} | "
            f"{fmt(s.others_cores)} ({fmt(s.niced_cores)}) | {s.load} |")  # fmt: skip


def report(gs: list[Step], base: list[Step], pyav: list[Step], levers: list[Step], args: argparse.Namespace) -> str:
    """Everything after the table: profile, memory, server cost, targets, ratio (last line: vs `base`)."""
    out: list[str] = []
    gs_n, gs_lower = served(gs)
    b_n, b_lower = served(base)
    p_n, p_lower = served(pyav)
    measured = [s for s in gs if not math.isnan(s.cpu_pct_per_cam)]
    out.append(f"cameras served, {args.resolution}25 at cadence {args.cadence:g} s: GridSight {gs_n}"
               f"{' (every N tried was on time: a lower bound)' if gs_lower else ''}; "
               f"baseline (OpenCV read() loop) {b_n}{' (lower bound)' if b_lower else ''}; "
               f"PyAV decode-all {p_n}{' (lower bound)' if p_lower else ''}"
               f"{f' (ratio {gs_n / p_n:.1f})' if p_n else ''}")  # fmt: skip
    if measured:
        big = max(measured, key=lambda s: s.n)
        out.append(f"\nwhere GridSight's CPU went at N={big.n} (per camera, % of one core; /proc/<pid>/task/*/stat):")
        out += [f"  {g}: {p:.3f}" for g, p in big.cpu_groups.items()]
        demux = next((s for s in levers if s.variant.kind == "demux"), None)
        if demux is not None and levers[0].n == demux.n:  # the same N: fixed costs divide alike
            ref = levers[0]
            readers = ref.cpu_groups.get(thread_group("reader-"), math.nan)
            decode = ref.cpu_groups.get(DECODE_GROUP, math.nan)
            out.append(f"  at N={ref.n}: readers {readers:.3f} = RTSP receive + demux (PyAV alone: "
                       f"{demux.cpu_pct_per_cam:.3f}) + due-frame decode ({decode:.3f}) + GridSight's per-packet "
                       f"Python (ring, health, due decoder: ~{readers - demux.cpu_pct_per_cam - decode:.3f})"
                       )  # fmt: skip
        wall_ms, cpu_ms, queue_ms = big.analysis_ms
        out.append(f"  analysis: {wall_ms:.0f} ms wall per analysed frame = {cpu_ms:.0f} ms CPU of the analysis thread "
                   f"+ {queue_ms:.0f} ms waiting for a CPU (run queue) + {wall_ms - cpu_ms - queue_ms:.0f} ms "
                   f"waiting otherwise (the GIL; SQLite); GIL probe (20 ms sleep, late by) p50 "
                   f"{big.gil_wait_ms[0]:.1f} / p95 {big.gil_wait_ms[1]:.1f} ms; whole machine busy "
                   f"{big.busy_cores:.2f} of {os.cpu_count()} cores (GridSight "
                   f"{big.cpu_pct_per_cam * big.n / 100:.2f}, RTSP server {big.server_pct / 100:.2f}, "
                   f"others {big.others_cores:.2f})")  # fmt: skip
        stagger = next((s for s in levers if s.variant.stagger), None)
        if stagger is not None:
            out.append(f"  readers started spread over one cadence (due instants not aligned), N={stagger.n}: "
                       f"{'on time' if stagger.ok else 'NOT on time'}, detection bound {stagger.bound_max:.1f} s, "
                       f"latency p95 {stagger.lat_p95:.2f} s")  # fmt: skip
        if big.memory:
            m = big.memory
            rest = big.rss_mb - m["ring MB"] - m["last_image MB"] - m["queued frames MB"]
            per = {k: v / big.n for k, v in m.items()}
            out.append(f"memory at N={big.n}: RSS {big.rss_mb:.0f} MB (peak {big.hwm_mb:.0f}) = "
                       f"{big.rss_mb / big.n:.1f} MB/camera: packet rings {per['ring MB']:.1f} MB/camera "
                       f"({per['ring packets']:.0f} packets), last analysed BGR image {per['last_image MB']:.1f} "
                       f"MB/camera, queued frames {m['queued frames MB']:.0f} MB in all, the rest (decoders, "
                       f"demuxers, Python, libraries) {rest / big.n:.1f} MB/camera")  # fmt: skip
        out.append(
            f"threads at N={big.n}: {big.threads} = " + ", ".join(f"{k} {v}" for k, v in big.thread_census.items())
        )
        if len(measured) >= 2:
            a, b = measured[-2], measured[-1]
            out.append(f"marginal memory N={a.n}→{b.n}: {(b.rss_mb - a.rss_mb) / (b.n - a.n):.1f} MB/camera; "
                       f"threads {a.threads}→{b.threads}")  # fmt: skip
    for s in unique([*gs, *levers]):
        if s.mounts and not math.isnan(s.server_pct):
            out.append(f"RTSP server at N={s.n} ({s.variant.name}, {s.mounts} mounts): {s.server_pct:.0f}% of a core = "
                       f"{s.server_idle_pct / s.mounts:.2f}% per mount with no client (producer: demux + Python "
                       f"pacing) + {(s.server_pct - s.server_idle_pct) / s.n:.2f}% per client (payloading, TCP); "
                       f"RSS {s.server_rss_mb:.0f} MB")  # fmt: skip
    ok_gs = [s for s in gs if s.ok]
    top = ok_gs[-1] if ok_gs else None
    ratio = gs_n / b_n if b_n else math.inf
    out.append("\ntargets:")
    out.append(f"  ≥ 100 simulated 1080p25 cameras on cadence {args.cadence:g} s: "
               f"{'met' if gs_n >= 100 and args.resolution == '1080p' else 'MISSED'} ({gs_n})")  # fmt: skip
    if top:
        lim = args.cadence + LATENCY_SLACK_S
        out.append(f"  detection latency ≤ cadence + 5 s = {lim:g} s: {'met' if top.bound_max <= lim else 'MISSED'} "
                   f"(worst bound {top.bound_max:.1f} s at N={top.n}; measured: frame arrival → analysis done, "
                   f"p95 {top.lat_p95:.2f} s)")  # fmt: skip
        per = top.rss_mb / top.n
        ring_s = 10 + 3 * args.cadence  # the default clip (5 s + 5 s) + 3 cadences: PacketRing's span
        full = "" if top.warmup_s + top.window_s >= ring_s else f"; packet rings not yet full ({ring_s:g} s)"
        out.append(f"  ≤ 40 MB per camera: {'met' if per <= 40 else 'MISSED'} ({per:.1f} MB/camera at N={top.n}{full})")
    verdict = "undetermined (the baseline served none)" if not b_n else "met" if ratio >= 10 else "MISSED"
    out.append(f"  ≥ 10× the baseline: {verdict} ({gs_n} vs {b_n})")
    if gs_lower or b_lower:
        out.append("  (a ratio from a lower bound: see above)")
    out.append(f"\nratio: {ratio:.1f}" if b_n else "\nratio: n/a")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps, shorter windows, no levers (~3 min)")
    ap.add_argument("--cameras", help="GridSight ladder (default 50,100,125,150,200; quick: 50,100)")
    ap.add_argument("--baseline-cameras", help="baseline ladder (default 4,8,12,16,24,32; quick: 4,8)")
    ap.add_argument("--levers", help="comma list of " + ",".join(LEVERS) + " (default all; quick: none)")
    ap.add_argument("--lever-cameras", type=int, default=25, help="cameras in every lever row")
    ap.add_argument("--seconds", type=float, help="measured window of the GridSight ladder (default 60; quick 30)")
    ap.add_argument("--short-seconds", type=float, help="window of baseline and lever rows (default 25; quick 20)")
    ap.add_argument("--warmup", type=float, default=10.0, help="least warm-up before measuring (s)")
    ap.add_argument("--cadence", type=float, default=10.0, help="cadence_s of every camera")
    ap.add_argument("--resolution", default="1080p", choices=list(RESOLUTIONS), help="of the ladders")
    ap.add_argument("--mounts", type=int, default=20, help="RTSP mounts; cameras share them round-robin (0: one each)")
    ap.add_argument("--server-idle", type=float, default=2.0, help="s of RTSP server CPU sampled before clients")
    ap.add_argument("--workers", default="auto", help="GridSight ladder's worker processes, N or auto (one per core)")
    ap.add_argument("--malloc-arenas", type=int, default=0, help="MALLOC_ARENA_MAX for the measured processes")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    ap.add_argument("--child", choices=["gridsight", "baseline", "demux"], help=argparse.SUPPRESS)
    ap.add_argument("spec", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.spec.read_text())
        (child_gridsight if args.child == "gridsight" else child_baseline)(spec)
        return
    q = args.quick
    gs_ns = ladder(args.cameras or ("50,100" if q else "50,100,125,150,200"))
    base_ns = ladder(args.baseline_cameras or ("4,8" if q else "4,8,12,16,24,32"))
    levers = [x for x in (args.levers if args.levers is not None else ("" if q else ",".join(LEVERS))).split(",") if x]
    for x in levers:
        if x not in LEVERS:
            ap.error(f"unknown lever {x!r}; known: {', '.join(LEVERS)}")
    if {"gate", "int8", "rect"} & set(levers) and "fp32" not in levers:
        levers.insert(0, "fp32")  # what they are compared with
    args.seconds = args.seconds or (30.0 if q else 60.0)
    args.short_seconds = args.short_seconds or (20.0 if q else 25.0)
    if min(args.seconds, args.short_seconds) < 2 * args.cadence:
        ap.error("windows must last at least two cadences (the on-time check needs two analyses per camera)")

    from tests.support.rtsp import rtsp_available

    if reason := rtsp_available():
        raise SystemExit(f"RTSP test server unavailable: {reason}")
    started = time.monotonic()
    print(f"machine: {machine()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for job in background_jobs():
        print(f"  busy elsewhere: {job}")
    workers = (os.cpu_count() or 1) if args.workers == "auto" else int(args.workers)
    gs_variant = replace(GRIDSIGHT, res=args.resolution, workers=workers,
                         name=f"gridsight, {workers} worker processes" if workers > 1 else GRIDSIGHT.name)  # fmt: skip
    base_variants = [replace(BASELINE, res=args.resolution), replace(PYAV_BASELINE, res=args.resolution)]
    lever_variants = [replace(LEVERS[x], res=LEVERS[x].res if x == "720p" else args.resolution) for x in levers]
    ensure_models({BASELINE_MODEL} | {v.model for v in lever_variants if v.model})
    files = {(v.res, v.gop_s): videos(v.res, v.gop_s) for v in [gs_variant, *lever_variants]}
    print(f"cadence {args.cadence:g} s; windows {args.seconds:g} s (GridSight ladder), {args.short_seconds:g} s "
          f"(baseline, levers); warm-up ≥ {args.warmup:g} s; files per resolution: "
          f"{', '.join(f'{r} GOP {g:g} s: {len(f)}' for (r, g), f in files.items())}\n", flush=True)  # fmt: skip

    print("GridSight and baseline ladders, interleaved:", flush=True)
    ladders = [Ladder(gs_variant, gs_ns, files[(args.resolution, GOP_S)], args.seconds)]
    ladders += [Ladder(b, base_ns, files[(args.resolution, GOP_S)], args.short_seconds) for b in base_variants]
    run_ladders(ladders, args)
    gs, bases = ladders[0].steps, []
    for lad in ladders[1:]:
        steps = lad.steps
        if steps and steps[0].n > 1 and not steps[0].ok:  # not even the smallest: look below it
            below = Ladder(lad.v, [1, 2], files[(args.resolution, GOP_S)], args.short_seconds)
            run_ladders([below], args)
            steps = below.steps + steps
        bases.append(steps)
    base, pyav = bases
    lever_steps: list[Step] = []
    if lever_variants:
        print(f"levers at N={args.lever_cameras}:", flush=True)
        one = replace(gs_variant, workers=1, name=GRIDSIGHT.name)  # levers: per-camera costs in one process
        ref = next((s for s in gs if s.n == args.lever_cameras and s.variant == one
                    and not math.isnan(s.cpu_pct_per_cam)), None)  # fmt: skip
        if ref is None:
            lad = Ladder(one, [args.lever_cameras], files[(args.resolution, GOP_S)], args.short_seconds)
            run_ladders([lad], args)
            ref = lad.steps[0]
        lever_steps.append(ref)
        failed = next((s.n for s in gs if not s.ok and not math.isnan(s.cpu_pct_per_cam)), None)
        for v in lever_variants:
            n = (failed or gs[-1].n) if v.stagger else args.lever_cameras  # stagger: where the ladder broke
            lad = Ladder(v, [n], files[(v.res, v.gop_s)], args.short_seconds)
            run_ladders([lad], args)
            lever_steps += lad.steps

    print(f"\n{args.resolution}25 H.264 over RTSP/TCP from 127.0.0.1, cadence {args.cadence:g} s, "
          f"total run {time.monotonic() - started:.0f} s; load average now "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}\n")  # fmt: skip
    print(TABLE_HEAD)
    for s in unique([*gs, *base, *pyav, *lever_steps]):
        print(table_row(s))
    if lever_steps:
        ref = lever_steps[0]
        print(f"\nlevers vs {ref.variant.name} at N={ref.n}: "
              + "; ".join(f"{s.variant.name} {s.variant.res}: ×{s.cpu_pct_per_cam / ref.cpu_pct_per_cam:.2f} CPU"
                          for s in lever_steps[1:] if ref.cpu_pct_per_cam > 0 and s.n == ref.n))  # fmt: skip
    if args.json:
        steps = unique([*gs, *base, *pyav, *lever_steps])
        args.json.write_text(json.dumps([asdict(s) for s in steps], indent=1, default=str))
    print()
    print(report(gs, base, pyav, lever_steps, args))


if __name__ == "__main__":
    main()
