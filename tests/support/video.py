"""Decoded frames of test videos."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

Sampled = list[tuple[float, NDArray[np.uint8]]]


def sample(path: Path, step_s: float) -> Sampled:
    """(t, BGR image) every `step_s` seconds of video, decoded with PyAV."""
    out: Sampled = []
    nxt = 0.0
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            t = float(f.pts * f.time_base)
            if t + 1e-6 >= nxt:
                out.append((t, f.to_ndarray(format="bgr24")))
                nxt += step_s
    return out
