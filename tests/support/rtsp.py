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
import subprocess
from pathlib import Path

from .child import ChildServer

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


class RtspServer(ChildServer):
    """A looping, live-paced RTSP server on 127.0.0.1, one mount per MP4 file."""

    error = RtspServerError
    label = "RTSP server"
    bind_error = "could not listen"

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
        super().__init__(port, startup_timeout)

    # --- public API -----------------------------------------------------------
    def url(self, name: str) -> str:
        name = name.strip("/")
        if name not in self.mounts:
            raise KeyError(f"no mount {name!r}; have {sorted(self.mounts)}")
        return f"rtsp://{HOST}:{self.port}/{name}"

    def __repr__(self) -> str:
        return f"RtspServer(port={self._port}, mounts={sorted(self.mounts)}, running={self.running})"

    # --- internals --------------------------------------------------------------
    def _command(self) -> list[str]:
        cmd = [SYSTEM_PYTHON, str(SERVER_SCRIPT), "--port", str(self._port or 0), "--exit-on-stdin-eof"]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path}"]
        return cmd
