"""One worker process per core, restarted when it dies or outgrows its memory bound.

Why processes: Python analysis code holds the GIL, and ONNX Runtime with one intra-op
thread per process beats one process with several threads on these CPUs (measured
20–35 %). Workers are ordinary `gridsight run --worker I` processes sharing the database;
the camera leases (detector/runtime/leases.py) spread the cameras over them and move a dead
worker's cameras to the others within the lease time, and back when it is restarted.
The supervisor itself runs the API and the filer, and no camera.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
RESTART_MIN_S, RESTART_MAX_S = 1.0, 60.0  # back-off for a worker that keeps dying
STABLE_S = 60.0  # a worker that lived this long starts its back-off afresh


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process (Linux /proc), None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    backoff_s: float = RESTART_MIN_S
    due: float = 0.0  # when a dead worker may start again


@dataclass
class Supervisor:
    config: Path
    workers: int
    max_rss_mb: float | None = None  # a worker above this is restarted (its cameras move meanwhile)
    log_dir: Path | None = None  # workers' stderr, one file each; None: inherited
    demo: bool = False  # the workers add the embedded demo camera too (gridsight run --demo)
    log_format: str | None = None  # gridsight run --log-format, passed on
    _workers: list[Worker] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._workers = [Worker(i) for i in range(self.workers)]
        for w in self._workers:
            self._spawn(w)
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def _spawn(self, w: Worker) -> None:
        cmd = [sys.executable, "-m", "detector.cli", "run", "--config", str(self.config),
               "--worker", str(w.index), "--workers", str(self.workers)]  # fmt: skip
        cmd += ["--demo"] if self.demo else []
        cmd += ["--log-format", self.log_format] if self.log_format else []
        env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core each: no library may start its own pool
        err = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            err = (self.log_dir / f"worker-{w.index}.log").open("a")
        w.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603 — our own CLI
        w.started = time.monotonic()
        log.info("worker started", extra={"worker": w.index, "pid": w.proc.pid, "restarts": w.restarts})

    def _loop(self) -> None:
        while not self._stop.wait(CHECK_EVERY_S):
            self.check()

    def check(self) -> None:
        """Restarts dead workers (with back-off) and stops those above the memory bound."""
        now = time.monotonic()
        for w in self._workers:
            if self._stop.is_set() or w.proc is None:
                return
            code = w.proc.poll()
            if code is None:
                limit = self.max_rss_mb
                mb = rss_mb(w.proc.pid) if limit else None
                if mb is not None and limit is not None and mb > limit:
                    log.error("worker above its memory bound; restarting it",
                              extra={"worker": w.index, "rss_mb": round(mb), "max_rss_mb": limit})  # fmt: skip
                    w.proc.terminate()
                continue
            if not w.due:  # just found dead
                lived = now - w.started
                w.backoff_s = RESTART_MIN_S if lived > STABLE_S else min(w.backoff_s * 2, RESTART_MAX_S)
                w.due = now + w.backoff_s
                log.error("worker exited; restarting it",
                          extra={"worker": w.index, "exit_code": code, "restart_in_s": w.backoff_s})  # fmt: skip
            elif now >= w.due:
                w.due = 0.0
                w.restarts += 1
                self._spawn(w)

    def pids(self) -> list[int | None]:
        return [w.proc.pid if w.proc and w.proc.poll() is None else None for w in self._workers]

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM every worker (they save state and release their leases), SIGKILL what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        alive = [w.proc for w in self._workers if w.proc is not None and w.proc.poll() is None]
        for p in alive:
            p.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout_s
        for p in alive:
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker did not stop; killing it", extra={"pid": p.pid})
                p.kill()
                p.wait(5)
