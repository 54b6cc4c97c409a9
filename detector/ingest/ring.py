"""The evidence clip ring: the last seconds of *compressed* packets, remuxed on demand.

Keeping packets instead of frames costs a few MB per camera and no decoding;
a clip is written by remuxing (no re-encode), so it is byte-for-byte what the
camera sent.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import av
import av.stream

REORDER_MARGIN = timedelta(seconds=1)  # a decoded frame's time may trail the newest packet's by the reorder delay


@dataclass(frozen=True, slots=True)
class RingPacket:
    packet: av.Packet
    ts: datetime  # pipeline time
    keyframe: bool


@dataclass
class ClipRequest:
    """A clip [start, end] in pipeline time, written to `path` once `end` has been received."""

    start: datetime
    end: datetime
    path: Path
    future: Future[Path | None] = field(default_factory=Future)


class PacketRing:
    """Packets of one stream, kept as whole GOPs for as long as a clip may still ask for them.

    A clip starts `pre` before an analysed frame, so the ring holds from `pre`
    before the oldest frame still waiting for analysis (or before now, when none
    waits) and from the start of every pending request; never more than `seconds`.
    On an analysis running on time that is about `pre` + one GOP, not the span.
    """

    def __init__(self, seconds: float, pre_s: float = 0.0) -> None:
        self.span = timedelta(seconds=seconds)
        self.pre = timedelta(seconds=pre_s) + REORDER_MARGIN
        self._gops: deque[list[RingPacket]] = deque()  # each starts with a keyframe
        self._waiting: deque[datetime] = deque(maxlen=64)  # frames handed to analysis, oldest first
        self._requests: list[ClipRequest] = []
        self._lock = threading.Lock()
        self._closed = False  # the reader is gone for good: nothing more will arrive

    def add(self, packet: av.Packet, ts: datetime) -> None:
        rp = RingPacket(packet, ts, bool(packet.is_keyframe))
        if rp.keyframe:
            self._gops.append([rp])
        elif self._gops:
            self._gops[-1].append(rp)
        else:  # before the first keyframe nothing can start a clip
            return
        with self._lock:
            need = (self._waiting[0] if self._waiting else ts) - self.pre
            need = min([need, *(r.start for r in self._requests)])
        floor = max(need, ts - self.span)
        while len(self._gops) > 1 and self._gops[1][0].ts <= floor:
            self._gops.popleft()

    def expect(self, ts: datetime) -> None:
        """A frame at `ts` goes to analysis: a clip may be asked from `pre` before it."""
        with self._lock:
            self._waiting.append(ts)

    def analysed(self, ts: datetime) -> None:
        """The frame at `ts` was analysed and any clip it needs requested (earlier frames were dropped or done)."""
        with self._lock:
            while self._waiting and self._waiting[0] <= ts:
                self._waiting.popleft()

    @property
    def packets(self) -> list[RingPacket]:
        return [p for gop in list(self._gops) for p in gop]

    def clear(self) -> None:
        """Forget packets of a connection that is gone (its codec parameters may differ)."""
        self._gops.clear()

    def request(self, start: datetime, end: datetime, path: Path) -> Future[Path | None]:
        req = ClipRequest(start, end, path)
        with self._lock:
            if self._closed:
                path.unlink(missing_ok=True)
                req.future.set_running_or_notify_cancel()
                req.future.set_result(None)
            else:
                self._requests.append(req)
        return req.future

    def drain(self, template: av.stream.Stream, stop: threading.Event, timeout_s: float) -> None:
        """At the end of a file: waits (at most `timeout_s`) until every frame handed to analysis
        was analysed, then writes every clip requested, cut at the end of what was read."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not stop.is_set():
            with self._lock:
                if not self._waiting:
                    break
            stop.wait(0.05)
        self.serve(template, None, flush=True)

    def close(self) -> None:
        """Called when the reader ends: pending and future requests get no clip."""
        with self._lock:
            self._closed = True
        self.serve(None, None, flush=True)

    def serve(self, template: av.stream.Stream | None, now: datetime | None, flush: bool = False) -> None:
        """Writes every requested clip whose end has passed (all of them when `flush`).

        Called by the reader thread that owns the input container, because the
        output stream is built from the live input stream's parameters.
        """
        with self._lock:
            due = [r for r in self._requests if flush or (now is not None and now >= r.end)]
            self._requests = [r for r in self._requests if r not in due]
        for req in due:
            if not req.future.set_running_or_notify_cancel():  # the incident went on without it
                req.path.unlink(missing_ok=True)
                continue
            try:
                ok = template is not None and write_clip(self.packets, template, req.start, req.end, req.path)
            except (av.FFmpegError, OSError, ValueError) as e:
                req.path.unlink(missing_ok=True)
                req.future.set_exception(e)
                continue
            if not ok:
                req.path.unlink(missing_ok=True)
            req.future.set_result(req.path if ok else None)


def write_clip(
    packets: list[RingPacket], template: av.stream.Stream, start: datetime, end: datetime, path: Path
) -> bool:
    """Remuxes the packets from the last keyframe at/before `start` up to `end` into an MP4.

    Returns False when the ring holds nothing for that span.
    """
    first = 0
    for i, p in enumerate(packets):
        if p.ts > start:
            break
        if p.keyframe:
            first = i
    chosen = [p for p in packets[first:] if p.ts <= end]
    while chosen and not chosen[0].keyframe:  # a clip must start decodable
        chosen.pop(0)
    if not chosen:
        return False
    base_dts = chosen[0].packet.dts if chosen[0].packet.dts is not None else chosen[0].packet.pts or 0
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream_from_template(template)
        for rp in chosen:
            src = rp.packet
            pkt = av.Packet(bytes(src))
            pkt.pts = None if src.pts is None else src.pts - base_dts
            pkt.dts = None if src.dts is None else src.dts - base_dts
            pkt.duration = src.duration
            pkt.time_base = src.time_base
            pkt.is_keyframe = src.is_keyframe
            pkt.stream = stream
            out.mux(pkt)
    return True
