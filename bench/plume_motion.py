"""How much of a smoke box moves between analyses: real plumes against the surfaces the detector calls smoke.

    python bench/plume_motion.py [--cadence S] [--mirrors DIR]

Real plumes: the labelled smoke boxes of ../shared/datasets/smoke whose video has the next frame
too (the set's frames are one second apart, named <video>_mp4-<n>): the share of each box that
changed by the next second (`detector.analysis.plume.moving_share`). One second is less than any
cadence, so this is the least a plume moves. Surfaces: every smoke or fire detection at the rule's
score (0.35) of the bundled detector, one frame a second, on the clips of bench/real_clips.yaml
(none shows smoke), against the frame `--cadence` seconds earlier as the pipeline would see it
(the clips loop). The table gives the share's quantiles and the detections kept at a few minimum
shares; the running check keeps a box from MIN_MOVING_SHARE on (without it: every box).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.real_footage import load_clips  # noqa: E402
from detector.analysis.onnx_detector import OnnxModel  # noqa: E402
from detector.analysis.plume import MIN_MOVING_SHARE, moving_share, small_grey  # noqa: E402
from detector.config import BUNDLED_MODELS  # noqa: E402
from detector.models.deployments import ModelStore  # noqa: E402
from tests.conftest import SHARED_VIDEOS  # noqa: E402
from training.sources import MIRRORS  # noqa: E402

SMOKE = SHARED_VIDEOS.parent / "smoke"
MIN_SCORE = 0.35  # 06020 and 06029's rule
SHARES = (0.15, 0.2, MIN_MOVING_SHARE, 0.35)


def labelled_plumes() -> list[float]:
    """The moved share of each labelled smoke box (class 1) over the next second of its video."""
    frames = {}
    for f in SMOKE.glob("images/*/*.jpg"):
        if m := re.match(r"(.+_mp4)-(\d+)_jpg", f.name):
            frames[m[1], int(m[2])] = f
    shares = []
    for (video, n), path in sorted(frames.items()):
        after = frames.get((video, n + 1))
        labels = path.parents[2] / "labels" / path.parent.name / f"{path.stem}.txt"
        if after is None or not labels.exists():
            continue
        before, now = small_grey(cv2.imread(str(path))), small_grey(cv2.imread(str(after)))
        for line in labels.read_text().splitlines():
            cls, cx, cy, w, h = map(float, line.split())
            if int(cls) == 1:
                shares.append(moving_share(before, now, np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])))
    return shares


def one_per_second(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        out, next_s = [], 0.0
        for frame in c.decode(stream):
            if frame.time is not None and frame.time >= next_s:
                out.append(frame.to_ndarray(format="bgr24"))
                next_s += 1.0
    return out


def surfaces(model: OnnxModel, clips: list, cadence_s: int) -> dict[str, list[float]]:
    """Per clip, the moved share of each smoke/fire detection against the frame one cadence earlier."""
    found: dict[str, list[float]] = defaultdict(list)
    for clip in clips:
        frames = one_per_second(clip.path)
        grey = [small_grey(f) for f in frames]
        for t, image in enumerate(frames):
            obs = model.predict([image], classes=["smoke", "fire"])[0]
            for box, score in zip(obs.xyxy, obs.scores, strict=True):
                if score >= MIN_SCORE:
                    found[clip.name].append(moving_share(grey[(t - cadence_s) % len(frames)], grey[t], box))
    return found


def row(name: str, shares: list[float]) -> str:
    s = np.asarray(shares)
    if not len(s):
        return f"| {name} | 0 | | | | " + " | ".join("" for _ in SHARES) + " |"
    q = np.quantile(s, [0.1, 0.5, 0.9])
    kept = " | ".join(f"{(s >= m).mean():.0%}" for m in SHARES)
    return f"| {name} | {len(s)} | {q[0]:.2f} | {q[1]:.2f} | {q[2]:.2f} | {kept} |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cadence", type=int, default=10, help="seconds between analyses")
    ap.add_argument("--mirrors", type=Path, default=MIRRORS, help="folder of git mirrors (clips held there)")
    args = ap.parse_args()
    store = ModelStore(BUNDLED_MODELS)
    model = OnnxModel(store.path("gridsight-detector", store.default_version("gridsight-detector") or ""))
    plumes = labelled_plumes()
    found = surfaces(model, load_clips(args.mirrors), args.cadence)
    print(f"# moved share of smoke boxes; {model.manifest.name} {model.manifest.version}; "
          f"the check keeps a box from {MIN_MOVING_SHARE} (without it: 100 %)\n")  # fmt: skip
    print("| boxes | n | p10 | median | p90 | " + " | ".join(f"kept ≥ {m:g}" for m in SHARES) + " |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(SHARES))
    print(row("labelled smoke, next second (shared set)", plumes))
    for name, shares in found.items():
        print(row(f"detections on {name} (no smoke), {args.cadence} s", shares))
    print(row("all detections on the real clips", [v for s in found.values() for v in s]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
