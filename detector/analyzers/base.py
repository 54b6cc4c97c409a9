"""The one small interface every analyzer implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

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
