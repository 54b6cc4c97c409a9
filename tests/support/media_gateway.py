"""A media gateway on 127.0.0.1, as cities run one in front of a GB/T 28181 platform.

ZLMediaKit, SRS and wvp re-publish each channel (a 20-digit GB/T 28181 device id) as
HTTP-FLV, HLS and a snapshot URL. This server does the same for a local video file, live:
- `/live/<channel>.live.flv`: one endless FLV stream per request, paced at real time
  (the file's packets remuxed, looping, timestamps running on);
- `/live/<channel>/hls.m3u8`: a sliding live playlist (no ENDLIST) over 1 s MPEG-TS
  segments cut from the file, the window moving with the wall clock;
- `/index/api/getSnap?stream=<channel>`: a JPEG of the frame that is live now.
`stop()` closes the listener and every open stream (a gateway restart); `start()` again.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import av
import cv2

SEGMENT_S = 1.0
WINDOW = 4  # segments in the live playlist


class _Channel:
    def __init__(self, video: Path, work: Path) -> None:
        self.video = video
        self.segments, self.durations = _cut_segments(video, work)
        self.frames = _frames(video)  # one a second


def _cut_segments(video: Path, out: Path) -> tuple[list[bytes], list[float]]:
    """The file as MPEG-TS segments of about SEGMENT_S (cut at keyframes), in memory."""
    out.mkdir(parents=True, exist_ok=True)
    with av.open(str(video)) as src:
        stream = src.streams.video[0]
        playlist = out / "all.m3u8"
        opts = {"hls_time": str(SEGMENT_S), "hls_list_size": "0", "hls_segment_filename": str(out / "seg%04d.ts")}
        with av.open(str(playlist), "w", format="hls", options=opts) as dst:
            o = dst.add_stream_from_template(stream)
            for packet in src.demux(stream):
                if packet.dts is None:
                    continue
                packet.stream = o
                dst.mux(packet)
    lines = playlist.read_text().splitlines()
    durations = [float(line.split(":")[1].rstrip(",")) for line in lines if line.startswith("#EXTINF:")]
    names = [line for line in lines if line.endswith(".ts")]
    return [(out / n).read_bytes() for n in names], durations


def _frames(video: Path) -> list[bytes]:
    """A frame a second as JPEG (the snapshot API answers with the one that is live now)."""
    with av.open(str(video)) as src:
        step = round(float(src.streams.video[0].average_rate or 1))
        return [
            cv2.imencode(".jpg", f.to_ndarray(format="bgr24"))[1].tobytes()
            for i, f in enumerate(src.decode(video=0))
            if i % step == 0
        ]


class MediaGateway:
    def __init__(self, channels: dict[str, Path], work: Path, port: int = 0) -> None:
        self.channels = {cid: _Channel(video, work / cid) for cid, video in channels.items()}
        self.port = port
        self.requests: list[str] = []
        self._t0 = time.monotonic()
        self._server: ThreadingHTTPServer | None = None
        self._closing = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> MediaGateway:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                gateway.requests.append(self.path)
                gateway._serve(self)

        self._closing.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]  # the same port again after a restart
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._closing.set()  # ends the endless FLV answers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> MediaGateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def url(self, kind: str, channel: str) -> str:
        base = f"http://127.0.0.1:{self.port}"
        return {
            "flv": f"{base}/live/{channel}.live.flv",
            "hls": f"{base}/live/{channel}/hls.m3u8",
            "snap": f"{base}/index/api/getSnap?stream={channel}",
        }[kind]

    # ------------------------------------------------------------ answers

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        path = parts.path.strip("/").split("/")
        if path[:1] == ["live"] and len(path) == 2 and path[1].endswith(".live.flv"):
            return self._flv(h, path[1].removesuffix(".live.flv"))
        if path[:1] == ["live"] and len(path) == 3 and path[2] == "hls.m3u8":
            return self._playlist(h, path[1])
        if path[:1] == ["live"] and len(path) == 3 and path[2].endswith(".ts"):
            return self._segment(h, path[1], path[2])
        if parts.path == "/index/api/getSnap":
            return self._snap(h, parse_qs(parts.query).get("stream", [""])[0])
        self._send(h, 404, b"no such stream", "text/plain")

    def _channel(self, h: BaseHTTPRequestHandler, cid: str) -> _Channel | None:
        ch = self.channels.get(cid)
        if ch is None:
            self._send(h, 404, f"channel {cid} is not online".encode(), "text/plain")
        return ch

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _live_segment(self, ch: _Channel) -> int:
        """Index (ever growing) of the segment that is live now."""
        return int((time.monotonic() - self._t0) / SEGMENT_S)

    def _playlist(self, h: BaseHTTPRequestHandler, cid: str) -> None:
        if (ch := self._channel(h, cid)) is None:
            return
        last = self._live_segment(ch)
        first = max(0, last - WINDOW + 1)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{int(max(ch.durations)) + 1}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}"]  # fmt: skip
        for i in range(first, last + 1):
            if i > first and i % len(ch.segments) == 0:
                lines.append("#EXT-X-DISCONTINUITY")  # the file loops: timestamps start again
            lines += [f"#EXTINF:{ch.durations[i % len(ch.segments)]:.3f},", f"{i}.ts"]
        self._send(h, 200, ("\n".join(lines) + "\n").encode(), "application/vnd.apple.mpegurl")

    def _segment(self, h: BaseHTTPRequestHandler, cid: str, name: str) -> None:
        if (ch := self._channel(h, cid)) is None:
            return
        self._send(h, 200, ch.segments[int(name.removesuffix(".ts")) % len(ch.segments)], "video/mp2t")

    def _snap(self, h: BaseHTTPRequestHandler, cid: str) -> None:
        if (ch := self._channel(h, cid)) is None:
            return
        n = int(time.monotonic() - self._t0) % len(ch.frames)
        self._send(h, 200, ch.frames[n], "image/jpeg")

    def _flv(self, h: BaseHTTPRequestHandler, cid: str) -> None:
        if (ch := self._channel(h, cid)) is None:
            return
        h.send_response(200)
        h.send_header("Content-Type", "video/x-flv")
        h.send_header("Connection", "close")  # no length: the stream ends when one side closes
        h.end_headers()
        h.close_connection = True
        try:
            with av.open(h.wfile, "w", format="flv") as out:
                offset, started = 0, time.monotonic()
                while not self._closing.is_set():
                    offset = self._flv_loop(ch, out, offset, started)
        except (BrokenPipeError, ConnectionResetError, ValueError, av.FFmpegError):
            pass  # the reader went away, or stop() closed the socket

    def _flv_loop(self, ch: _Channel, out: av.container.OutputContainer, offset: int, started: float) -> int:
        """One pass over the file into `out`, paced at real time; returns the next pass's offset."""
        with av.open(str(ch.video)) as src:
            stream = src.streams.video[0]
            if not out.streams.video:
                out.add_stream_from_template(stream)
            o = out.streams.video[0]
            last = offset
            for packet in src.demux(stream):
                if packet.dts is None or self._closing.is_set():
                    continue
                t = float((packet.pts + offset) * stream.time_base)
                if (lag := t - (time.monotonic() - started)) > 0:
                    time.sleep(lag)
                packet.pts += offset
                packet.dts += offset
                last = max(last, packet.pts + (packet.duration or 0))
                packet.stream = o
                out.mux(packet)
            return last
