"""Frame sources: one reader thread per camera, decoding only what is analysed.

A reader demuxes every packet (cheap), keeps them in the clip ring, and hands
the decoder only the packets needed for the next due frame:

* GOP ≤ cadence: decode just the first keyframe at/after each due time;
* GOP > cadence: at the keyframe whose GOP holds the due time, decode forward
  to the due frame, then stop feeding the decoder until the next due time.

Failures never escape the thread: the reader reports them in `CameraHealth`,
backs off (exponential, with jitter) and reconnects.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import av
import av.container
import av.stream
import cv2
import httpx
import numpy as np

from detector.config import Source
from detector.ingest.health import CameraHealth, CameraState
from detector.ingest.ring import PacketRing
from detector.types import Frame

log = logging.getLogger(__name__)

DEFAULT_FILE_START = datetime(2026, 1, 5, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
#: wall seconds a finished file waits for the analysis to catch up, so its last incidents get their clips
FILE_END_DRAIN_S = 20.0

FrameSink = Callable[[Frame], None]


class SourceError(Exception):
    """A source could not be opened or read; the message is safe to log (no credentials)."""


def redact(url: str) -> str:
    """The URL without user info, for logs and the API."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def is_file_source(url: str) -> bool:
    return "://" not in url or url.startswith(("file://", "demo://"))


def resolve_url(source: Source, cache_dir: Path) -> str:
    """The URL to open: demo videos generated, file:// stripped, credentials injected from env.

    Raises:
        SourceError: a credential variable is not set.
    """
    url = source.url
    if url.startswith("demo://"):
        from detector.synthetic.demo import StreetSpec, ensure_demo_video

        return str(ensure_demo_video(cache_dir, StreetSpec()))
    if url.startswith("file://"):
        return url.removeprefix("file://")
    if source.username_env or source.password_env:
        creds = []
        for var in (source.username_env, source.password_env):
            if var is None:
                creds.append("")
            elif var not in os.environ:
                raise SourceError(f"environment variable {var} (credentials) is not set")
            else:
                creds.append(quote(os.environ[var], safe=""))
        parts = urlsplit(url)
        netloc = f"{creds[0]}:{creds[1]}@{parts.netloc}" if creds[1] else f"{creds[0]}@{parts.netloc}"
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


@dataclass(frozen=True, slots=True)
class ReaderOptions:
    cadence_s: float
    ring_s: float = 30.0
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0  # no packet for this long → stalled
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    max_decode_errors: int = 50  # consecutive undecodable packets → reconnect


class Backoff:
    """Exponential backoff with full jitter; reset on success."""

    def __init__(self, lo: float, hi: float, rng: random.Random | None = None) -> None:
        self.lo, self.hi, self.attempt = lo, hi, 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets

    def next_delay(self) -> float:
        ceiling = min(self.hi, self.lo * 2**self.attempt)
        self.attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


class Reader:
    """One camera's source in its own thread; failures stay inside it (see `health`)."""

    def __init__(self, camera_id: str, url: str, sink: FrameSink, health: CameraHealth, options: ReaderOptions) -> None:
        self.camera_id = camera_id
        self._url = url  # may hold credentials: never log it, use self.safe_url
        self.safe_url = redact(url)
        self.sink = sink
        self.health = health
        self.opts = options
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"reader-{camera_id}", daemon=True)
        self._index = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        raise NotImplementedError

    def _emit(self, image: np.ndarray, ts: datetime) -> None:
        self._index += 1
        self.sink(Frame(self.camera_id, self._index, ts, image))


class StreamReader(Reader):
    """Reads one camera's stream (RTSP, HTTP, file)."""

    def __init__(
        self,
        camera_id: str,
        source: Source,
        url: str,
        sink: FrameSink,
        health: CameraHealth,
        options: ReaderOptions,
        ring: PacketRing | None = None,
        decode: bool = True,
        resume_from: datetime | None = None,
    ) -> None:
        super().__init__(camera_id, url, sink, health, options)
        self.source = source
        self.ring = ring
        self.decode = decode  # False: a record-only reader that only fills the ring
        self.is_file = is_file_source(source.url)
        self._loop_offset = 0.0  # seconds added to PTS after each loop of a file
        self._start = source.start_time or DEFAULT_FILE_START
        # File sources resume where the pipeline clock stopped (restart after a crash),
        # so the camera's time never runs backwards.
        self._resume_s = max(0.0, (resume_from - self._start).total_seconds()) if resume_from else 0.0

    def _run(self) -> None:
        backoff = Backoff(self.opts.backoff_min_s, self.opts.backoff_max_s)
        while not self._stop.is_set():
            try:
                finished = self._session(backoff)
            except (av.FFmpegError, SourceError, OSError) as e:
                # str(e) from FFmpeg may contain the URL; replace it with the redacted one
                msg = str(e).replace(self._url, self.safe_url)
                was_live = self.health.state is CameraState.LIVE
                state = CameraState.STALLED if was_live else CameraState.FAILED
                if self.health.set_state(state, msg):
                    log.warning("camera source %s", state, extra={"camera": self.camera_id, "error": msg})
                finished = False
            if self.ring is not None:
                self.ring.serve(None, None, flush=True)
            if finished:
                if self.health.set_state(CameraState.ENDED):
                    log.info("camera file ended", extra={"camera": self.camera_id})
                break
            self.health.reconnects += 1
            self._stop.wait(backoff.next_delay())
        else:
            self.health.set_state(CameraState.STOPPED)
        if self.ring is not None:
            self.ring.close()

    # ------------------------------------------------------------ one connection

    def _open(self) -> av.container.InputContainer:
        options = {}
        if self._url.startswith("rtsp://"):
            options = {"rtsp_transport": self.source.transport}
        try:
            return av.open(self._url, options=options, timeout=(self.opts.open_timeout_s, self.opts.read_timeout_s))
        except av.FFmpegError as e:
            raise SourceError(f"cannot open {self.safe_url}: {e.strerror or type(e).__name__}") from e

    def _session(self, backoff: Backoff) -> bool:
        """Reads until the stream breaks (raises) or a non-looping file ends (returns True)."""
        self.health.set_state(CameraState.CONNECTING)
        if self.ring is not None:
            self.ring.clear()
        container = self._open()
        try:
            if not container.streams.video:
                raise SourceError(f"{self.safe_url} has no video stream")
            stream = container.streams.video[0]
            ctx = stream.codec_context
            ctx.thread_count = 1  # scale with processes, not decoder threads
            start = self._start
            skip_until = self._resume_pending(container, stream)
            pace: tuple[float, float] | None = None  # (stream s, monotonic s) pacing anchor
            # Live cameras started together would all be due in the same second: each gets its own phase.
            phase = 0.0 if self.is_file else camera_phase(self.camera_id, self.opts.cadence_s)
            demux = _DueDecoder(self.opts.cadence_s, offset=self._loop_offset, phase=phase)
            errors = 0
            while not self._stop.is_set():
                got = False
                for packet in container.demux(stream):
                    if self._stop.is_set():
                        return False
                    if packet.size == 0:  # flush packet at EOF
                        continue
                    got = True
                    pts_s = _seconds(packet)
                    if self.is_file:
                        if pts_s is None:
                            continue
                        pts_s += self._loop_offset
                        if pts_s < skip_until:
                            continue
                        ts = start + timedelta(seconds=pts_s)
                        if self.source.speed:
                            pace = pace or (pts_s, time.monotonic())
                            lag = (pts_s - pace[0]) / self.source.speed - (time.monotonic() - pace[1])
                            if lag > 0 and self._stop.wait(lag):
                                return False
                    else:
                        ts = datetime.now(UTC)
                    if self.health.set_state(CameraState.LIVE):
                        backoff.reset()
                        log.info("camera live", extra={"camera": self.camera_id, "url": self.safe_url})
                    self.health.packet()
                    if self.ring is not None:
                        self.ring.add(packet, ts)
                        self.ring.serve(stream, ts)
                    if not self.decode:
                        continue
                    t0 = time.thread_time()
                    due = demux.feed(packet, ctx)
                    self.health.decode_seconds += time.thread_time() - t0
                    for image, t in due:
                        errors = 0
                        self._emit(image, start + timedelta(seconds=t) if self.is_file else ts)
                    if demux.errors:
                        errors += demux.errors
                        demux.errors = 0
                        if errors > self.opts.max_decode_errors:
                            raise SourceError(f"{errors} undecodable packets in a row")
                if not self.is_file:
                    raise SourceError("stream ended")
                if not got and self._loop_offset == 0.0:
                    raise SourceError(f"{self.safe_url}: no readable video packets")
                if not self.source.loop:
                    if self.ring is not None:  # the analysis may be behind: its last clips come from here
                        self.ring.drain(stream, self._stop, timeout_s=FILE_END_DRAIN_S)
                    return True
                # Loop: continue the clock where the file ended.
                self._loop_offset = demux.last_t + (1.0 / float(stream.average_rate or 25))
                demux.offset = self._loop_offset
                container.seek(0)
                ctx.flush_buffers()
                demux.feeding = False
            return False
        finally:
            if self.ring is not None:
                self.ring.serve(None, None, flush=True)
            container.close()

    def _resume_pending(self, container: av.container.InputContainer, stream: av.stream.Stream) -> float:
        """Stream seconds to skip to (once, at the first connection after a restart)."""
        resume, self._resume_s = self._resume_s, 0.0
        if not resume or not self.is_file:
            return 0.0
        duration = float(stream.duration * stream.time_base) if stream.duration else (container.duration or 0) / 1e6
        if self.source.loop and duration > 0:
            self._loop_offset = (resume // duration) * duration
        return resume


def camera_phase(camera_id: str, cadence_s: float) -> float:
    """A stable offset in [0, cadence) for the camera's first due frame, spreading cameras over the cadence."""
    return zlib.crc32(camera_id.encode()) / 2**32 * cadence_s


class _DueDecoder:
    """Chooses which packets reach the decoder (see module docstring).

    Times are stream seconds: packet PTS + `offset` (which grows by the file's
    duration at each loop, so the clock never runs backwards). The first frame
    is due `phase` seconds after the first packet.
    """

    def __init__(self, cadence_s: float, offset: float = 0.0, phase: float = 0.0) -> None:
        self.cadence = cadence_s
        self.offset = offset
        self.phase = phase
        self.next_due: float | None = None
        self.gop: float | None = None
        self.last_key: float | None = None
        self.last_t = 0.0
        self.feeding = False
        self.errors = 0

    def feed(self, packet: av.Packet, ctx: av.CodecContext) -> list[tuple[np.ndarray, float]]:
        """Returns the due frame(s) this packet completes, as (BGR image, stream seconds)."""
        raw = _seconds(packet)
        if raw is None:
            return []
        t = raw + self.offset
        self.last_t = max(self.last_t, t)
        if self.next_due is None:
            self.next_due = t + self.phase
        if packet.is_keyframe:
            if self.last_key is not None and t > self.last_key:
                self.gop = t - self.last_key
            self.last_key = t
            long_gop = self.gop is not None and self.gop > self.cadence
            due_now = t >= self.next_due
            if due_now and not long_gop:
                return self._decode_key(packet, ctx, t)
            if self.feeding:  # a new GOP: what was being decoded is no longer needed
                ctx.flush_buffers()
            # Long GOP: decode this GOP forward if a due time falls inside it.
            self.feeding = due_now or (long_gop and self.next_due < t + self.gop)
        if not self.feeding:
            return []
        for f in self._decode(packet, ctx):
            ft = None if f.time is None else f.time + self.offset
            if ft is None or ft < self.next_due - 1e-3:
                continue
            self._advance(ft)
            if self.gop is None or self.last_key is None or self.next_due >= self.last_key + self.gop:
                self.feeding = False  # next due time is in a later GOP
                ctx.flush_buffers()
            return [(f.to_ndarray(format="bgr24"), ft)]
        return []

    def _decode_key(self, packet: av.Packet, ctx: av.CodecContext, t: float) -> list[tuple[np.ndarray, float]]:
        self.feeding = False
        frames = self._decode(packet, ctx)
        if not frames:  # the decoder holds it back (reordering delay): drain, then reset
            try:
                frames = list(ctx.decode(None))
            except av.FFmpegError:
                frames = []
        ctx.flush_buffers()
        if not frames:
            return []
        self._advance(t)
        return [(frames[-1].to_ndarray(format="bgr24"), t)]

    def _advance(self, t: float) -> None:
        nxt = self.next_due + self.cadence  # set at the first packet
        while nxt <= t:  # fell behind (e.g. long GOP): skip to the next slot after t
            nxt += self.cadence
        self.next_due = nxt

    def _decode(self, packet: av.Packet, ctx: av.CodecContext) -> list[av.VideoFrame]:
        try:
            frames = list(ctx.decode(packet))
        except av.FFmpegError:
            self.errors += 1
            return []
        good = [f for f in frames if not f.is_corrupt]  # the decoder concealed lost data: not the scene
        self.errors += len(frames) - len(good)
        return good


def _seconds(packet: av.Packet) -> float | None:
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None or packet.time_base is None:
        return None
    return float(ts * packet.time_base)


class SnapshotReader(Reader):
    """Polls a still-image URL at the cadence (cameras that only offer snapshots)."""

    def _run(self) -> None:
        backoff = Backoff(self.opts.backoff_min_s, self.opts.backoff_max_s)
        timeout = httpx.Timeout(self.opts.read_timeout_s, connect=self.opts.open_timeout_s)
        with httpx.Client(timeout=timeout, follow_redirects=True) as client:
            while not self._stop.is_set():
                try:
                    image = self._fetch(client)
                except (httpx.HTTPError, SourceError) as e:
                    msg = str(e).replace(self._url, self.safe_url)
                    if self.health.set_state(CameraState.FAILED, msg):
                        log.warning("snapshot failed", extra={"camera": self.camera_id, "error": msg})
                    self.health.reconnects += 1
                    self._stop.wait(backoff.next_delay())
                    continue
                backoff.reset()
                if self.health.set_state(CameraState.LIVE):
                    log.info("camera live", extra={"camera": self.camera_id, "url": self.safe_url})
                self.health.packet()
                self._emit(image, datetime.now(UTC))
                self._stop.wait(self.opts.cadence_s)
        self.health.set_state(CameraState.STOPPED)

    def _fetch(self, client: httpx.Client) -> np.ndarray:
        return _snapshot_image(client.get(self._url), self.safe_url)


def _snapshot_image(resp: httpx.Response, safe_url: str) -> np.ndarray:
    if resp.status_code != 200:
        raise SourceError(f"{safe_url} answered HTTP {resp.status_code}")
    image = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{safe_url} did not return a decodable image")
    return image


def grab_frame(source: Source, url: str, timeout_s: float = 10.0) -> np.ndarray:
    """One full-resolution BGR frame from the source, opened as its reader would (`gridsight cameras snapshot`).

    Raises:
        SourceError: the source cannot be opened, has no video, or gives no frame in time.
    """
    safe = redact(url)
    if source.snapshot:
        try:
            resp = httpx.get(url, timeout=timeout_s, follow_redirects=True)
        except httpx.HTTPError as e:
            raise SourceError(f"{safe}: {type(e).__name__}: {str(e).replace(url, safe)}") from e
        return _snapshot_image(resp, safe)
    options = {"rtsp_transport": source.transport} if url.startswith("rtsp://") else {}
    try:
        with av.open(url, options=options, timeout=(timeout_s, timeout_s)) as container:
            if not container.streams.video:
                raise SourceError(f"{safe} has no video stream")
            for frame in container.decode(video=0):  # a live stream: from its next keyframe on
                return frame.to_ndarray(format="bgr24")
    except av.FFmpegError as e:
        raise SourceError(f"cannot read {safe}: {e.strerror or type(e).__name__}") from e
    raise SourceError(f"{safe} ended before its first frame")
