"""A test server run as a child process: spawn, wait for `READY <port>`, stop, kill, restart. Stdlib only."""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from pathlib import Path


class ChildServer:
    """Subclasses say how to start the child (`_command`) and name their errors."""

    label = "server"
    bind_error = "could not bind"  # what the child says when the old process still holds the port
    error = RuntimeError

    def __init__(self, port: int | None, startup_timeout: float, cwd: Path | None = None) -> None:
        self._port = port  # None until the first start() when the OS picks it
        self.startup_timeout = startup_timeout
        self._cwd = cwd
        self._proc: subprocess.Popen | None = None
        self._stdout = None
        self._stderr = None

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _shown(self, cmd: list[str]) -> str:
        """The command line as error messages show it (subclasses hide secrets)."""
        return " ".join(cmd)

    @property
    def port(self) -> int:
        if self._port is None:
            raise self.error("port unknown until start()")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self):
        if self._proc is not None:
            raise self.error("already started; stop() first")
        now = time.monotonic()
        deadline = now + self.startup_timeout
        # A restart can race the old process releasing the port: retry that case
        # (only) for a while, leaving the last attempt time to start up.
        retry_until = now + min(5.0, self.startup_timeout / 2)
        while True:
            err = self._spawn_and_wait_ready(deadline)
            if err is None:
                return self
            if self.bind_error in err and self._port and time.monotonic() < retry_until:
                time.sleep(0.2)
                continue
            raise self.error(err)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL at once (a crash)."""
        self._end(signal.SIGKILL, 5.0)

    def restart(self):
        self.stop()
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn_and_wait_ready(self, deadline: float) -> str | None:
        """Start the child; None once it printed READY, else an error message."""
        cmd = self._command()
        # Logs go to files, not pipes: a chatty child can never block on a full pipe.
        self._stdout = tempfile.TemporaryFile(mode="w+")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        # stdin is a pipe we never write: if the test process dies, the child
        # sees EOF and exits instead of lingering.
        self._proc = subprocess.Popen(
            cmd, cwd=self._cwd, stdin=subprocess.PIPE, stdout=self._stdout, stderr=self._stderr, text=True
        )
        while True:
            self._stdout.seek(0)
            for line in self._stdout.read().splitlines():
                if line.startswith("READY"):
                    parts = line.split()
                    self._port = int(parts[1]) if len(parts) > 1 else self._port
                    return None
            code = self._proc.poll()
            if code is not None or time.monotonic() > deadline:
                why = (
                    f"exited with code {code}" if code is not None else f"not READY within {self.startup_timeout:.0f}s"
                )
                stderr = self._read_stderr()
                self.stop()
                return f"{self.label} {why}: {self._shown(cmd)}\n--- stderr ---\n{stderr}"
            time.sleep(0.05)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            if proc.stdin:
                proc.stdin.close()
            self._close_logs()

    def _read_stderr(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read()[-8000:]

    def _close_logs(self) -> None:
        for f in (self._stdout, self._stderr):
            if f is not None:
                f.close()
        self._stdout = self._stderr = None
