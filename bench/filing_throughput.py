"""Filing throughput (cases per second) to a local platform server: GridSight's filer vs a plain httpx loop.

    python bench/filing_throughput.py [--cases 300] [--repeat 5] [--fail-rate 0.3] [--filers 2] [--shipped-backoff]

Every row run gets a fresh platform server (tests/support/platform_server.py on
127.0.0.1, an empty data dir of its own) and a fresh copy, in a temp dir of its
own, of a GridSight database with `--cases` queued cases of two small JPEGs each
(tests/support/builders.py `queue_cases`, built once per invocation). Set-up is
not timed; the clock runs from the moment the senders are released until the
last case is answered. Rows are interleaved within each repeat so that the
baseline sees the same machine load as the filer. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # tests.support is not installed; spawned workers inherit sys.path
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from sqlalchemy import select  # noqa: E402

from detector import logs  # noqa: E402
from detector.config import Camera, HttpJsonPlatform, Settings  # noqa: E402
from detector.filing.cases import CaseService  # noqa: E402
from detector.filing.filer import Filer  # noqa: E402
from detector.filing.platform import HttpJsonAdapter  # noqa: E402
from detector.incidents.evidence import EvidenceStore  # noqa: E402
from detector.rules.taxonomy import load_taxonomy  # noqa: E402
from detector.store.db import Case, Outbox, open_database  # noqa: E402
from tests.support.builders import queue_cases  # noqa: E402
from tests.support.platform import PlatformServer  # noqa: E402

TAX = load_taxonomy(None)
CAMERA = Camera.model_validate(
    {
        "id": "c1",
        "name": "幸福路东",
        "source": {"url": "/x.mp4"},
        "location": {"address": "幸福路 12 号", "division_code": "110107", "grid_code": "110107001002003"},
        "problems": ["09006"],
    }
)
SHIPPED = Settings().filing  # retry_min_s 2, retry_max_s 300, lease_s 60


def cpu_s() -> float:
    """CPU seconds (user + system) of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def proc_cpu_s(pid: int | None) -> float | None:
    """CPU seconds of another process (all threads) from /proc, or None."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


# ------------------------------------------------------------------ one row run


@dataclass
class Run:
    wall_s: float
    t95_s: float | None  # from the start until 95% of the cases were stored (the platform's created_at)
    client_cpu_s: float
    server_cpu_s: float | None
    on_server: int
    duplicates: int
    problems: list[str] = field(default_factory=list)
    post: dict[str, int] = field(default_factory=dict)  # outcome -> count
    gets: int = 0


def case_service(store: EvidenceStore, settings: Settings) -> CaseService:
    return CaseService(TAX, settings, store, {CAMERA.id: CAMERA})


def make_template(folder: Path, n: int) -> None:
    """A GridSight database with `n` queued cases (2 JPEGs each) and its evidence folder, built once per run."""
    engine, sessions = open_database(f"sqlite:///{folder / 'gridsight.db'}")
    store = EvidenceStore(folder / "evidence")
    queue_cases(sessions, store, case_service(store, Settings()), n)  # the payload does not depend on the platform
    engine.dispose()  # checkpoints the WAL into the database file


class Bench:
    """Fresh temp dirs: a platform server with no cases, a copy of the template database and evidence."""

    def __init__(self, n: int, template: Path, tmp: str | None = None, platform_tmp: str | None = None) -> None:
        self.n = n
        self._tmp = tempfile.TemporaryDirectory(prefix="gs-filing-", dir=tmp)
        self._ptmp = tempfile.TemporaryDirectory(prefix="gs-platform-", dir=platform_tmp or tmp)
        self.root = Path(self._tmp.name)
        shutil.copytree(template, self.root, dirs_exist_ok=True)
        self.server = PlatformServer(Path(self._ptmp.name)).start()
        self.db_url = f"sqlite:///{self.root / 'gridsight.db'}"
        self.engine, self.sessions = open_database(self.db_url)
        self.store = EvidenceStore(self.root / "evidence")
        self.cfg = HttpJsonPlatform(type="http_json", base_url=self.server.base_url)
        self.settings = Settings(platform=self.cfg)
        self.cases = case_service(self.store, self.settings)

    @property
    def server_pid(self) -> int | None:
        proc = getattr(self.server, "_proc", None)  # the child process of the test helper
        return proc.pid if proc is not None else None

    def check(self, start: float, wall_s: float, client_cpu: float, server_cpu: float | None, outbox: bool) -> Run:
        """What the platform holds after a row run that started at `start` (time.time())."""
        stored = self.server.admin.cases()
        created = sorted(datetime.fromisoformat(c["created_at"]).timestamp() for c in stored)
        t95 = created[max(0, math.ceil(0.95 * self.n) - 1)] - start if len(created) >= 0.95 * self.n else None
        stats = self.server.admin.stats()["requests"]
        keys = [c["idempotency_key"] for c in stored]
        problems = []
        bad_files = sum(1 for c in stored if len(c["files"]) != 2 or not all(f["sha256_ok"] for f in c["files"]))
        if bad_files:
            problems.append(f"{bad_files} cases without their 2 intact files")
        if outbox:
            with self.sessions() as s:
                states = list(s.scalars(select(Outbox.state)))
            undone = sum(1 for st in states if st != "done")
            if undone:
                problems.append(f"{undone} outbox rows not done")
        return Run(
            wall_s,
            t95,
            client_cpu,
            server_cpu,
            len(set(keys)),
            len(keys) - len(set(keys)),
            problems,
            post=stats.get("POST /cases", {}),
            gets=sum(stats.get("GET /cases/{id}", {}).values()),
        )

    def close(self) -> None:
        self.engine.dispose()
        self.server.stop()
        self._tmp.cleanup()
        self._ptmp.cleanup()


# ------------------------------------------------------------------ baseline: a plain httpx loop


def baseline(b: Bench, timeout_s: float) -> Run:
    """The very same case JSON and files, POSTed one after the other; no database, no outbox, no retry."""
    # Set-up (not timed): the payloads and evidence files of the queued cases, exactly as the filer
    # would send them (its own attachment builder: same paths, filenames, digests, content types).
    helper = Filer(b.sessions, HttpJsonAdapter(b.cfg), b.store, b.cases, b.settings.filing)
    jobs: list[tuple[str, dict[str, Any], list[Any]]] = []
    with b.sessions() as s:
        for msg in s.scalars(select(Outbox).where(Outbox.kind == "file").order_by(Outbox.id)):
            case = s.get(Case, msg.case_id)
            files = helper._attachments(s, msg.payload.get("evidence", []))
            body = {**case.payload, "evidence": [a.describe() for a in files]}
            jobs.append((msg.idempotency_key, body, files))
    helper.adapter.close()
    failed = 0
    with httpx.Client(base_url=b.cfg.base_url, timeout=b.cfg.timeout_s) as client:
        s0, c0, t0, start = proc_cpu_s(b.server_pid), cpu_s(), time.perf_counter(), time.time()
        for key, body, files in jobs:
            handles = [a.path.open("rb") for a in files]
            try:
                obj = json.dumps(body, ensure_ascii=False)
                parts: list[tuple[str, Any]] = [("case", (None, obj, "application/json"))]
                parts += [("file", (a.filename, h, a.content_type)) for a, h in zip(files, handles, strict=True)]
                resp = client.post("/cases", files=parts, headers={"Idempotency-Key": key})
            finally:
                for h in handles:
                    h.close()
            if resp.status_code >= 300 or not resp.json().get("case_id"):
                failed += 1
            if time.perf_counter() - t0 > timeout_s:
                break
        wall, cpu, s1 = time.perf_counter() - t0, cpu_s() - c0, proc_cpu_s(b.server_pid)
    run = b.check(start, wall, cpu, None if s0 is None or s1 is None else s1 - s0, outbox=False)
    if failed:
        run.problems.append(f"{failed} POSTs failed")
    return run


# ------------------------------------------------------------------ GridSight's filer, in worker processes


def _filer_worker(
    idx: int,
    db_url: str,
    evidence_root: str,
    base_url: str,
    filing: dict[str, float],
    log_path: str,
    ready: Any,
    start: Any,
    stop: Any,
    sent: Any,
    cpu: Any,
) -> None:
    """One `gridsight filer`: its own engine, adapter and Filer thread, logging as shipped (JSON, INFO)."""
    sys.stderr = open(log_path, "a", buffering=1)  # the log lives as long as the process
    cfg = HttpJsonPlatform(type="http_json", base_url=base_url)
    settings = Settings(platform=cfg, filing=filing)
    logs.configure(settings.log_level, settings.log_format)
    engine, sessions = open_database(db_url)
    store = EvidenceStore(Path(evidence_root))
    cases = case_service(store, settings)
    # As detector.runtime.app.build_filer does for an http_json platform (status polling included).
    filer = Filer(sessions, HttpJsonAdapter(cfg), store, cases, settings.filing, poll_every_s=cfg.poll_every_s)
    ready.put(idx)
    start.wait()
    c0 = cpu_s()
    filer.start()
    while not stop.wait(0.01):
        sent[idx] = filer.sent
    filer.stop()
    sent[idx] = filer.sent
    cpu[idx] = cpu_s() - c0
    engine.dispose()


def filer_row(
    b: Bench,
    timeout_s: float,
    filers: int = 1,
    fail_rate: float = 0.0,
    filing: dict[str, float] | None = None,
    seed: int = 0,
) -> Run:
    """`filers` worker processes, each running a Filer thread on the same database, until all N are sent."""
    ctx = mp.get_context("spawn")
    ready, start, stop = ctx.Queue(), ctx.Event(), ctx.Event()
    sent, cpu = ctx.Array("q", filers, lock=False), ctx.Array("d", filers, lock=False)
    procs = []
    for i in range(filers):
        log = str(b.root / f"filer-{i}.log")
        args = (i, b.db_url, str(b.store.root), b.cfg.base_url, filing or {}, log, ready, start, stop, sent, cpu)
        procs.append(ctx.Process(target=_filer_worker, name=f"filer-{i}", args=args, daemon=True))
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    if fail_rate:
        b.server.admin.faults(fail_rate=fail_rate, seed=seed)
    s0, t0, begin = proc_cpu_s(b.server_pid), time.perf_counter(), time.time()
    start.set()
    while sum(sent) < b.n and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.005)
    wall, s1 = time.perf_counter() - t0, proc_cpu_s(b.server_pid)
    stop.set()
    for p in procs:
        p.join(60)
    b.server.admin.faults()  # off again, so that the admin calls of the check are not counted as faults
    run = b.check(begin, wall, sum(cpu), None if s0 is None or s1 is None else s1 - s0, outbox=True)
    if sum(sent) < b.n:
        run.problems.append(f"timeout: {sum(sent)} of {b.n} sent in {timeout_s:g} s")
    if any(p.exitcode for p in procs):
        run.problems.append(f"worker exit codes {[p.exitcode for p in procs]}")
    return run


# ------------------------------------------------------------------ driver


def machine() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), platform.processor())
    la = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}, nproc {len(os.sched_getaffinity(0))}, load average {la}; Python {platform.python_version()}, "
        f"httpx {httpx.__version__}, SQLite {__import__('sqlite3').sqlite_version}"
    )


def filesystem(folder: str | None) -> str:
    """'/tmp (ext4)': the folder and the type of the file system it is on."""
    path = Path(folder or tempfile.gettempdir()).resolve()
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        mnt, fstype = line.split()[1:3]
        if (path == Path(mnt) or Path(mnt) in path.parents) and len(mnt) > len(best):
            best, kind = mnt, fstype
    return f"{path} ({kind})"


def requests_cell(run: Run) -> str:
    posts = sum(run.post.values())
    failed = sum(v for k, v in run.post.items() if k.startswith("fault"))
    cell = f"{posts} POST" + (f" ({failed} failed)" if failed else "")
    return cell + (f" + {run.gets} GET" if run.gets else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300, help="cases filed per row run")
    ap.add_argument("--repeat", type=int, default=5, help="runs per row; the median is reported")
    ap.add_argument("--fail-rate", type=float, default=0.3, help="share of POSTs the platform fails (HTTP 500)")
    ap.add_argument("--retry-min-s", type=float, default=0.05, help="first retry delay of the fault row")
    ap.add_argument("--retry-max-s", type=float, default=0.2, help="retry delay ceiling of the fault row")
    ap.add_argument("--filers", type=int, default=2, help="filer processes of the multi-filer row (0: no such row)")
    ap.add_argument(
        "--shipped-backoff",
        action="store_true",
        help=f"add the fault row with the shipped backoff ({SHIPPED.retry_min_s:g} s doubling to "
        f"{SHIPPED.retry_max_s:g} s); takes 1-3 minutes per run",
    )
    ap.add_argument("--timeout", type=float, default=240.0, help="give up on a row run after this many seconds")
    ap.add_argument("--tmp", default=None, help="where GridSight's database and evidence go (default: system temp)")
    ap.add_argument(
        "--platform-tmp",
        default=None,
        help="where the platform server's data goes (default: /dev/shm when there is one, else --tmp)",
    )
    args = ap.parse_args()

    n, fr, limit = args.cases, args.fail_rate, args.timeout
    platform_tmp = args.platform_tmp
    if platform_tmp is None and os.access("/dev/shm", os.W_OK):
        platform_tmp = "/dev/shm"  # the test platform's own disk writes are not what is measured here
    fast = {"retry_min_s": args.retry_min_s, "retry_max_s": args.retry_max_s}
    pct = f"{fr * 100:g}%"
    rows: dict[str, Callable[[Bench, int], Run]] = {
        "baseline: httpx loop": lambda b, _i: baseline(b, limit),
        "filer": lambda b, _i: filer_row(b, limit),
        f"filer, {pct} failures": lambda b, i: filer_row(b, limit, fail_rate=fr, filing=fast, seed=11 + i),
    }
    if args.shipped_backoff:
        rows[f"filer, {pct} failures, shipped backoff"] = lambda b, i: filer_row(b, limit, fail_rate=fr, seed=11 + i)
    if args.filers > 1:
        rows[f"{args.filers} filer processes"] = lambda b, _i: filer_row(b, limit, filers=args.filers)

    print(f"machine: {machine()}", flush=True)
    print(
        f"GridSight database + evidence in {filesystem(args.tmp)}, "
        f"platform data in {filesystem(platform_tmp or args.tmp)}"
    )
    print(f"{n} cases per run, 2 JPEGs each; {args.repeat} repeats, rows interleaved\n", flush=True)
    runs: dict[str, list[Run]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory(prefix="gs-template-", dir=args.tmp) as template:
        make_template(Path(template), n)  # set-up: not timed
        for i in range(args.repeat):
            for name, fn in rows.items():
                b = Bench(n, Path(template), args.tmp, platform_tmp)  # set-up: not timed
                try:
                    run = fn(b, i)
                finally:
                    b.close()
                runs[name].append(run)
                note = f"; {'; '.join(run.problems)}" if run.problems else ""
                print(
                    f"  repeat {i + 1}/{args.repeat} {name}: {n / run.wall_s:.1f} cases/s in {run.wall_s:.2f} s{note}",
                    flush=True,
                )

    base = statistics.median(n / r.wall_s for r in runs["baseline: httpx loop"])
    print(f"\nmedian of {args.repeat}; fault row: fail_rate {fr:g}, retry {args.retry_min_s:g}–{args.retry_max_s:g} s")
    print(
        "| row | cases/s | min–max | wall s | 95% filed after s | client CPU ms/case | server CPU ms/case "
        "| requests (last run) | on server / duplicates | × baseline |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---:|")
    for name, rs in runs.items():
        rates = [n / r.wall_s for r in rs]
        med = statistics.median(rates)
        client = statistics.median(1000 * r.client_cpu_s / n for r in rs)
        servers = [1000 * r.server_cpu_s / n for r in rs if r.server_cpu_s is not None]
        server = f"{statistics.median(servers):.2f}" if servers else "–"
        stored = ", ".join(sorted({f"{r.on_server} / {r.duplicates}" for r in rs}))
        bad = [p for r in rs for p in r.problems]
        if bad or any(r.on_server != n or r.duplicates for r in rs):
            stored += " (!)"
        wall = statistics.median(r.wall_s for r in rs)
        t95s = [r.t95_s for r in rs if r.t95_s is not None]
        t95 = f"{statistics.median(t95s):.2f}" if t95s else "–"
        print(
            f"| {name} | {med:.1f} | {min(rates):.1f}–{max(rates):.1f} | {wall:.2f} | {t95} | {client:.2f} "
            f"| {server} | {requests_cell(rs[-1])} | {stored} | {med / base:.2f} |"
        )
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    filer = statistics.median(n / r.wall_s for r in runs["filer"])
    print(f"filer: {filer:.1f} cases/s (baseline {base:.1f} cases/s)")


if __name__ == "__main__":
    main()
