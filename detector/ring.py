"""The evidence clip ring: the last seconds of *compressed* packets, remuxed on demand.

Keeping packets instead of frames costs a few MB per camera and no decoding;
a clip is written by remuxing (no re-encode), so it is byte-for-byte what the
camera sent.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import av
import av.stream


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
    """Packets of one stream for the last `seconds`, always starting at a keyframe."""

    def __init__(self, seconds: float) -> None:
        self.span = timedelta(seconds=seconds)
        self._packets: deque[RingPacket] = deque()
        self._requests: list[ClipRequest] = []
        self._lock = threading.Lock()
        self._closed = False  # the reader is gone for good: nothing more will arrive

    def add(self, packet: av.Packet, ts: datetime) -> None:
        self._packets.append(RingPacket(packet, ts, bool(packet.is_keyframe)))
        # Drop whole GOPs from the front while the next keyframe is still old enough.
        while len(self._packets) > 1 and ts - self._packets[0].ts > self.span:
            nxt = next((i for i, p in enumerate(self._packets) if i and p.keyframe), None)
            if nxt is None or ts - self._packets[nxt].ts < self.span:
                break
            for _ in range(nxt):
                self._packets.popleft()

    def clear(self) -> None:
        """Forget packets of a connection that is gone (its codec parameters may differ)."""
        self._packets.clear()

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
                ok = template is not None and write_clip(list(self._packets), template, req.start, req.end, req.path)
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
