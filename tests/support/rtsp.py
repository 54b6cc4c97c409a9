"""Run the real RTSP test server (``rtsp_server.py``) from venv tests. Stdlib only.

GStreamer's Python bindings exist only for Debian's interpreter, so the server
runs as a child process of ``/usr/bin/python3``:

    with RtspServer({"cam": Path("clip.mp4")}) as srv:
        url = srv.url("cam")          # rtsp://127.0.0.1:PORT/cam
        ...
        srv.stop(); srv.start()       # restart on the same port

Tests should skip when ``rtsp_available()`` returns a reason string.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

# Override for unusual machines; the default is Debian's interpreter, where
# python3-gi and gir1.2-gst-rtsp-server-1.0 install the bindings.
SYSTEM_PYTHON = os.environ.get("GRIDSIGHT_RTSP_PYTHON", "/usr/bin/python3")
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
HOST = "127.0.0.1"

APT_HINT = (
    "apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base "
    "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
)

# Everything rtsp_server.py and gst-rtsp-server need at run time.
_CHECK = r"""
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstApp, GstRtsp, GstRtspServer
Gst.init(None)
need = ["filesrc", "queue", "qtdemux", "h264parse", "appsink", "appsrc",
        "rtph264pay", "rtpbin", "udpsrc", "multiudpsink"]
missing = [e for e in need if Gst.ElementFactory.find(e) is None]
if missing:
    raise SystemExit("missing GStreamer elements: " + ", ".join(missing))
"""


@functools.lru_cache(maxsize=1)
def rtsp_available() -> str | None:
    """None if the RTSP test server can run here, else a reason (for pytest.skip)."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} not found; needs: {APT_HINT}"
    try:
        proc = subprocess.run([SYSTEM_PYTHON, "-c", _CHECK], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {SYSTEM_PYTHON}: {exc}"
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"GStreamer RTSP server unavailable for {SYSTEM_PYTHON} ({detail}); needs: {APT_HINT}"
    return None


class RtspServerError(RuntimeError):
    pass


class RtspServer:
    """A looping, live-paced RTSP server on 127.0.0.1, one mount per MP4 file."""

    def __init__(
        self,
        mounts: dict[str, Path],
        port: int | None = None,
        *,
        startup_timeout: float = 30.0,
    ) -> None:
        if not mounts:
            raise ValueError("at least one mount is needed")
        self.mounts = {name.strip("/"): Path(path).resolve() for name, path in mounts.items()}
        for name, path in self.mounts.items():
            if not name or "=" in name:
                raise ValueError(f"bad mount name {name!r}")
            if not path.is_file():
                raise FileNotFoundError(f"mount {name!r}: no such file {path}")
        self._port = port  # None until the first start() when the OS picks it
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen | None = None
        self._stdout = None
        self._stderr = None

    # --- public API -----------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RtspServerError("port unknown until start()")
        return self._port

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def url(self, name: str) -> str:
        name = name.strip("/")
        if name not in self.mounts:
            raise KeyError(f"no mount {name!r}; have {sorted(self.mounts)}")
        return f"rtsp://{HOST}:{self.port}/{name}"

    def start(self) -> RtspServer:
        if self._proc is not None:
            raise RtspServerError("already started; stop() first")
        now = time.monotonic()
        deadline = now + self.startup_timeout
        # A restart can race the old process releasing the port: retry that case
        # (only) for a while, leaving the last attempt time to start up.
        retry_until = now + min(5.0, self.startup_timeout / 2)
        while True:
            err = self._spawn_and_wait_ready(deadline)
            if err is None:
                return self
            if "could not listen" in err and self._port and time.monotonic() < retry_until:
                time.sleep(0.2)
                continue
            raise RtspServerError(err)

    def stop(self, timeout: float = 5.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout)
        finally:
            if proc.stdin:
                proc.stdin.close()
            self._close_logs()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RtspServer(port={self._port}, mounts={sorted(self.mounts)}, running={self.running})"

    # --- internals --------------------------------------------------------------
    def _spawn_and_wait_ready(self, deadline: float) -> str | None:
        """Start the child; None once it printed READY, else an error message."""
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self._port or 0), "--exit-on-stdin-eof"]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        # Logs go to files, not pipes: a chatty child can never block on a full pipe.
        self._stdout = tempfile.TemporaryFile(mode="w+")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        # stdin is a pipe we never write: if the test process dies, the child
        # sees EOF and exits instead of lingering.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=self._stdout, stderr=self._stderr, text=True)
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
                return f"RTSP server {why}: {' '.join(cmd)}\n--- stderr ---\n{stderr}"
            time.sleep(0.05)

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
