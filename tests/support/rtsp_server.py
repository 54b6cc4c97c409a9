"""Tiny RTSP server for tests: serves H.264 MP4 files, looping forever, live-paced.

Run with Debian's interpreter (GStreamer's ``gi`` bindings are not in the venv):

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 \
        --mount cam1=/path/a.mp4 --mount cam2=/path/b.mp4

Each file is served at rtsp://127.0.0.1:PORT/NAME (RTP over TCP or UDP).
Prints ``READY <port>`` on stdout once listening (``--port 0`` picks a free
port). Exits cleanly on SIGTERM/SIGINT, and on stdin EOF with
``--exit-on-stdin-eof`` (so a crashed test run leaves no orphan server).

Design, and why:
* One *producer* per mount: ``filesrc ! qtdemux ! h264parse ! appsink``, looped
  with segment seeks (SEGMENT_DONE -> non-flushing seek to 0: no EOS, no
  flush). A Python thread pulls the frames, puts them on one gapless,
  monotonic timeline (see Producer._pace_and_fan_out) and releases them at
  real-time pace. No decoding/encoding: H.264 passes through as-is.
* The RTSP media pipeline is ``appsrc is-live=true ! h264parse ! rtph264pay``.
  Each released frame is pushed into every active appsrc, re-stamped onto that
  media pipeline's running time, so clients see an ordinary live stream.
* New clients start from a cached GOP (the frames since the last keyframe),
  so they can decode at once instead of waiting up to a whole GOP.
* Media is shared per mount (like one camera feeding many viewers).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

# Consumers whose appsrc queue exceeds this are considered stalled: we stop
# feeding them until the next keyframe rather than growing memory forever.
_MAX_QUEUED_BYTES = 32 * 1024 * 1024
# Bound the GOP cache in case a file has (almost) no keyframes.
_MAX_GOP_BUFFERS = 1000
# RTP-over-UDP sockets: loopback only, below Linux's ephemeral range (32768+).
_UDP_HOST = "127.0.0.1"
_UDP_PORTS = (20000, 32000)


def log(msg: str) -> None:
    print(f"rtsp_server: {msg}", file=sys.stderr, flush=True)


class _Consumer:
    """One RTSP media pipeline's appsrc, fed by a producer."""

    def __init__(self, appsrc: Gst.Element) -> None:
        self.appsrc = appsrc
        self.offset: int | None = None  # producer timeline -> this pipeline's running time
        self.need_keyframe = False

    def running_time_now(self) -> int | None:
        # Only known once the media pipeline is PLAYING (clock + base time set).
        clock = self.appsrc.get_clock()
        if clock is None or self.appsrc.current_state != Gst.State.PLAYING:
            return None
        return clock.get_time() - self.appsrc.get_base_time()


class Producer:
    """Plays one MP4 forever at real-time pace and fans its H.264 out to consumers."""

    def __init__(self, name: str, path: str, on_error) -> None:
        self.name = name
        self.path = path
        self._on_error = on_error
        self._lock = threading.Lock()
        self._consumers: list[_Consumer] = []
        # (pts, dts, buffer) since the last keyframe, on the producer timeline.
        self._gop: list[tuple[int, int, Gst.Buffer]] = []
        self.caps: Gst.Caps | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"producer-{name}", daemon=True)

        self.pipeline = Gst.parse_launch(
            "filesrc name=src ! qtdemux name=demux "
            # Only the first video track; other tracks (audio) stay unlinked,
            # which qtdemux tolerates.
            "demux.video_0 ! queue ! h264parse "
            "! video/x-h264,stream-format=avc,alignment=au "
            # sync=false: we pace in _run() on our own gapless timeline (see there).
            "! appsink name=sink sync=false max-buffers=4 drop=false"
        )
        self.pipeline.get_by_name("src").set_property("location", path)
        self.sink = self.pipeline.get_by_name("sink")
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message", self._on_message)

    def start(self, timeout_s: float = 10.0) -> None:
        # Preroll, then a flushing *segment* seek: qtdemux will post
        # SEGMENT_DONE instead of EOS at the end, which is what lets us loop.
        self.pipeline.set_state(Gst.State.PAUSED)
        ret, _, _ = self.pipeline.get_state(int(timeout_s * Gst.SECOND))
        if ret in (Gst.StateChangeReturn.FAILURE, Gst.StateChangeReturn.ASYNC):
            raise RuntimeError(f"{self.name}: could not preroll {self.path} ({ret.value_nick})")
        if not self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.SEGMENT, 0):
            raise RuntimeError(f"{self.name}: initial segment seek failed")
        self.pipeline.get_state(int(timeout_s * Gst.SECOND))
        self.caps = self.sink.get_static_pad("sink").get_current_caps()
        if self.caps is None:
            raise RuntimeError(f"{self.name}: no H.264 video caps from {self.path}")
        self.pipeline.set_state(Gst.State.PLAYING)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(2.0)
        self.pipeline.set_state(Gst.State.NULL)

    # --- bus (main loop thread) -------------------------------------------
    def _on_message(self, _bus, msg: Gst.Message) -> None:
        if msg.type == Gst.MessageType.SEGMENT_DONE:
            # Non-flushing segment seek back to 0: no flush, so the demuxer
            # just carries on with the first frame again.
            if not self.pipeline.seek_simple(Gst.Format.TIME, Gst.SeekFlags.SEGMENT, 0):
                self._on_error(f"{self.name}: loop seek failed")
        elif msg.type == Gst.MessageType.ERROR:
            err, dbg = msg.parse_error()
            self._on_error(f"{self.name}: {err.message} ({dbg})")
        elif msg.type == Gst.MessageType.EOS:
            # Should not happen with segment seeks; treat as fatal rather than
            # silently serving a dead stream.
            self._on_error(f"{self.name}: unexpected EOS")

    # --- pacing thread --------------------------------------------------------
    def _run(self) -> None:
        try:
            self._pace_and_fan_out()
        except Exception as exc:  # a bug here must stop the server loudly
            GLib.idle_add(self._on_error, f"{self.name}: {type(exc).__name__}: {exc}")

    def _pace_and_fan_out(self) -> None:
        """Pull frames, put them on one gapless timeline, release them in real time.

        Why not appsink sync=true: after a non-flushing segment seek GStreamer
        continues running time from the *last frame's* timestamp, not its end,
        so each loop would lose one frame duration (duplicate timestamps at the
        loop point). We therefore shift timestamps ourselves whenever a frame
        would not come after the previous one, and pace on that timeline.
        """
        clock = Gst.SystemClock.obtain()
        start = None  # clock time that maps to timeline 0
        shift = 0  # accumulated loop-point correction
        prev_dts = None
        frame_dur = Gst.SECOND // 25  # refined from the stream
        while not self._stopping.is_set():
            sample = self.sink.emit("try-pull-sample", 100 * Gst.MSECOND)
            if sample is None:
                continue  # timeout (or shutting down)
            buf = sample.get_buffer()
            seg = sample.get_segment()
            pts = seg.to_running_time(Gst.Format.TIME, buf.pts)
            if pts == Gst.CLOCK_TIME_NONE:
                continue  # outside the segment (edit list); not shown by players either
            pts += shift
            # With B-frames DTS can lie before the segment start (to_running_time
            # would return NONE), so derive it from PTS; may be slightly negative.
            dts = pts - (buf.pts - buf.dts if buf.dts != Gst.CLOCK_TIME_NONE else 0)
            if prev_dts is not None:
                if 0 < dts - prev_dts < Gst.SECOND:
                    frame_dur = dts - prev_dts
                if dts < prev_dts + frame_dur // 2:  # loop point: continue one frame later
                    fix = prev_dts + frame_dur - dts
                    shift, pts, dts = shift + fix, pts + fix, dts + fix
            prev_dts = dts

            now = clock.get_time()
            if start is None or now - (start + dts) > Gst.SECOND:
                start = now - dts  # first frame, or we fell far behind: resync, no burst
            wait = start + dts - now
            if wait > 0 and self._stopping.wait(wait / Gst.SECOND):
                break
            self._fan_out(pts, dts, buf)

    def _fan_out(self, pts: int, dts: int, buf: Gst.Buffer) -> None:
        keyframe = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
        with self._lock:
            if keyframe:
                self._gop.clear()
            if len(self._gop) < _MAX_GOP_BUFFERS:
                self._gop.append((pts, dts, buf))
            for consumer in list(self._consumers):
                if not self._feed(consumer, pts, dts, buf, keyframe):
                    self._consumers.remove(consumer)

    # --- consumers (RTSP server threads) ----------------------------------
    def add_consumer(self, appsrc: Gst.Element) -> _Consumer:
        consumer = _Consumer(appsrc)
        with self._lock:
            self._consumers.append(consumer)
        return consumer

    def remove_consumer(self, consumer: _Consumer) -> None:
        with self._lock:
            if consumer in self._consumers:
                self._consumers.remove(consumer)

    def _feed(self, c: _Consumer, pts: int, dts: int, buf: Gst.Buffer, keyframe: bool) -> bool:
        """Push one buffer (or the GOP cache for a new consumer). False = drop consumer."""
        if c.offset is None:
            now = c.running_time_now()
            if now is None or not self._gop or self._gop[0][2].has_flags(Gst.BufferFlags.DELTA_UNIT):
                return True  # media not PLAYING yet, or no keyframe cached yet
            # Map the cached keyframe to "now": all timestamps land in the
            # consumer's present/future, so nothing is late.
            c.offset = now - self._gop[0][1]
            return all(self._push(c, p, d, b, discont=(i == 0)) for i, (p, d, b) in enumerate(self._gop))
        if c.need_keyframe:
            if not keyframe:
                return True
            c.need_keyframe = False
        if c.appsrc.get_property("current-level-bytes") > _MAX_QUEUED_BYTES:
            c.need_keyframe = True  # stalled consumer: skip to the next GOP
            return True
        return self._push(c, pts, dts, buf)

    @staticmethod
    def _push(c: _Consumer, pts: int, dts: int, buf: Gst.Buffer, discont: bool = False) -> bool:
        out = buf.copy()  # shallow copy (shares memory) so timestamps are writable
        out.pts = pts + c.offset
        out.dts = dts + c.offset
        if discont:
            out.set_flags(Gst.BufferFlags.DISCONT)
        ret = c.appsrc.emit("push-buffer", out)
        # FLUSHING etc. means the media pipeline is shutting down.
        return ret == Gst.FlowReturn.OK


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, producer: Producer) -> None:
        super().__init__()
        self.producer = producer
        # h264parse config-interval=-1 repeats SPS/PPS in every IDR access
        # unit, so clients can (re)start at any keyframe. Not rtph264pay's
        # config-interval: it inserts them before *each IDR slice*, which makes
        # FFmpeg split multi-slice keyframes into two packets with equal pts.
        self.set_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=false "
            "! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
        )
        self.set_shared(True)  # one live stream per mount, like a camera
        # Without a pool, RTP/RTCP UDP sockets bind to 0.0.0.0; with a unicast
        # pool they bind to 127.0.0.1 (ports in use are skipped).
        pool = GstRtspServer.RTSPAddressPool()
        pool.add_range(_UDP_HOST, _UDP_HOST, *_UDP_PORTS, 0)
        self.set_address_pool(pool)
        # Allow both RTP over UDP and interleaved TCP.
        self.set_protocols(GstRtsp.RTSPLowerTrans.UDP | GstRtsp.RTSPLowerTrans.TCP)
        self.connect("media-configure", self._on_media_configure)

    def _on_media_configure(self, _factory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", self.producer.caps)
        consumer = self.producer.add_consumer(appsrc)
        media.connect("unprepared", lambda *_: self.producer.remove_consumer(consumer))


def parse_mount(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    name = name.strip("/")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected name=/path/file.mp4, got {text!r}")
    return name, path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--mount", type=parse_mount, action="append", required=True, metavar="NAME=FILE")
    ap.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when stdin closes (parent died)")
    args = ap.parse_args(argv)

    Gst.init(None)
    loop = GLib.MainLoop()
    exit_code = 0

    def fatal(msg: str) -> None:
        nonlocal exit_code
        log(f"error: {msg}")
        exit_code = 1
        loop.quit()

    producers = []
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    try:
        for name, path in args.mount:
            producer = Producer(name, path, fatal)
            producers.append(producer)
            producer.start()
            mounts.add_factory(f"/{name}", LoopingFactory(producer))
        # attach() binds with address reuse, so a restart can rebind the port at once.
        if server.attach(None) == 0:
            raise RuntimeError(f"could not listen on {args.host}:{args.port}")
    except Exception as exc:  # report any setup failure plainly
        log(f"error: {exc}")
        for p in producers:
            p.stop()
        return 1

    def quit_(*_args) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, quit_)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, quit_)
    if args.exit_on_stdin_eof:

        def on_stdin(fd: int, _cond) -> bool:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            return quit_() if not data else GLib.SOURCE_CONTINUE

        GLib.unix_fd_add_full(
            GLib.PRIORITY_DEFAULT,
            sys.stdin.fileno(),
            GLib.IOCondition.IN | GLib.IOCondition.HUP | GLib.IOCondition.ERR,
            on_stdin,
        )

    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    for p in producers:
        p.stop()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
