"""The typed objects that travel between pipeline stages."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame of one camera, stamped with pipeline time.

    `ts` is the pipeline clock (aware datetime): wall time of arrival for live
    sources, the configured start time + PTS for file sources. Rules only ever
    look at `ts`, so a file can be processed faster than real time.
    """

    camera_id: str
    index: int
    ts: datetime
    image: NDArray[np.uint8]  # BGR, HxWx3
    arrived: float = field(default_factory=time.monotonic)  # when it was decoded, for the analysis lag

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        h, w = self.image.shape[:2]
        return w, h


@dataclass(frozen=True, slots=True)
class Observations:
    """What analyzers saw in one frame, as a struct of arrays.

    Boxes are `xyxy` in *normalised* frame coordinates (0..1), so zones,
    case keys and annotation do not depend on the analysed resolution.
    `labels` are analyzer outputs such as "occupancy:stationary" or
    "detector:garbage" — the names problem types refer to in the taxonomy.
    """

    xyxy: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: NDArray[np.float32] = field(default_factory=lambda: np.zeros((0,), np.float32))
    labels: tuple[str, ...] = ()
    extras: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must have shape ({n}, 4), got {self.xyxy.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")
        if self.extras and len(self.extras) != n:
            raise ValueError(f"extras must have {n} entries, got {len(self.extras)}")

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def build(
        cls,
        boxes: list[tuple[float, float, float, float]] | NDArray[np.floating],
        scores: list[float] | NDArray[np.floating],
        labels: list[str] | tuple[str, ...],
        extras: list[dict[str, Any]] | None = None,
    ) -> Observations:
        """Builds from plain lists; boxes are clipped to the frame."""
        xyxy = np.clip(np.asarray(boxes, np.float32).reshape(-1, 4), 0.0, 1.0)
        return cls(
            xyxy=xyxy,
            scores=np.asarray(scores, np.float32).reshape(-1),
            labels=tuple(labels),
            extras=tuple(extras) if extras else tuple({} for _ in labels),
        )

    @classmethod
    def merge(cls, parts: list[Observations]) -> Observations:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls()
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            scores=np.concatenate([p.scores for p in parts]),
            labels=tuple(lbl for p in parts for lbl in p.labels),
            extras=tuple(e for p in parts for e in (p.extras or ({},) * len(p))),
        )

    def __getitem__(self, mask: NDArray[np.bool_]) -> Observations:
        idx = np.flatnonzero(mask)
        return Observations(
            xyxy=self.xyxy[idx],
            scores=self.scores[idx],
            labels=tuple(self.labels[i] for i in idx),
            extras=tuple(self.extras[i] for i in idx) if self.extras else (),
        )

    @property
    def bottom_center(self) -> NDArray[np.float32]:
        """(n, 2) anchor points where objects touch the ground."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    @property
    def area(self) -> NDArray[np.float32]:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])
