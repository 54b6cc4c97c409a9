"""The one small interface every analyzer implements."""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from detector.types import Frame, Observations


class Analyzer(ABC):
    """Turns one frame of one camera into observations.

    An instance belongs to one camera (analyzers such as occupancy keep a
    per-view state); heavy shared resources (an ONNX session) are shared by
    the factory that builds the instances, not by class attributes.
    """

    #: prefix of the labels this analyzer emits, e.g. "occupancy" → "occupancy:stationary"
    name: str
    #: True: skipped while the scene gate sees no change (its last observations stand).
    #: Cheap analyzers that model the scene over time (occupancy) must see every due frame.
    gated: bool = True

    @abstractmethod
    def analyze(self, frame: Frame) -> Observations:
        """Returns what this analyzer sees in `frame` (normalised xyxy boxes)."""

    def state(self) -> bytes | None:
        """Serialised long-lived state to survive restarts (None: nothing to keep)."""
        return None

    def load_state(self, blob: bytes) -> None:  # noqa: B027 - optional hook
        """Restores what `state()` returned; ignores a blob that no longer fits."""


class Stateful(Protocol):
    """Anything of a camera whose learned state survives restarts (analyzers, the tamper check)."""

    name: str

    def state(self) -> bytes | None: ...

    def load_state(self, blob: bytes) -> None: ...


def pack_states(analyzers: Sequence[Stateful]) -> bytes | None:
    """The long-lived state of every analyzer of a camera, in one blob keyed by analyzer name."""
    blobs = {a.name: np.frombuffer(b, np.uint8) for a in analyzers if (b := a.state()) is not None}
    if not blobs:
        return None
    buf = io.BytesIO()
    np.savez(buf, **blobs)  # plain uint8 arrays: loading never unpickles
    return buf.getvalue()


def restore_states(analyzers: Sequence[Stateful], blob: bytes) -> None:
    """Gives each analyzer its part of `pack_states`' blob; an unreadable blob is ignored."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            parts = {name: archive[name].tobytes() for name in archive.files}
    except (ValueError, OSError, KeyError):
        return  # from an older version or damaged: the analyzers learn the view again
    for a in analyzers:
        if a.name in parts:
            a.load_state(parts[a.name])
