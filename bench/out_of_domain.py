"""Garbage AP50 out of domain: the bundled detector on another city's street photos, beside in domain.

    python bench/out_of_domain.py --maltese MIRROR [--model MODEL_DIR ...]

MIRROR is a git directory of GitHub `SaulVas/ARI3129` @e88068f ("Trash on Maltese streets",
bagged household waste set out on pavements; fetch it with the tool library's `fetch`).
The repository states no licence: the set is built under var/ for evaluation only, never
trained on, never shipped. Roboflow exported each photo three times (augmented copies named
`<photo>_jpg.rf.<hash>.jpg`); one copy per photo is kept, so no photo counts thrice, and every
bag class is mapped to `garbage`. Each model (default: every bundled gridsight-detector
version) is evaluated through the runtime (training.evaluate); its in-domain garbage AP50 is
read from its manifest (the validation split of the data it trained on).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from detector.models.manifest import load_manifest  # noqa: E402
from training.datasets import photo_of  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.sources import git_file  # noqa: E402

COMMIT = "e88068f"
OUT = REPO / "var" / "datasets" / "maltese-eval"


def build_eval_set(mirror: Path, out: Path = OUT) -> tuple[int, int]:
    """Writes a one-class YOLO validation split from the mirror's tree at COMMIT; returns (images, boxes)."""
    files = subprocess.run(["git", "-C", str(mirror), "ls-tree", "-r", "--name-only", COMMIT, "data"],
                           check=True, capture_output=True, text=True).stdout.split()  # fmt: skip
    photos: dict[str, str] = {}
    for f in sorted(f for f in files if "/images/" in f):
        photos.setdefault(photo_of(Path(f)), f)  # the first copy of each photo
    (out / "images" / "val").mkdir(parents=True, exist_ok=True)
    (out / "labels" / "val").mkdir(parents=True, exist_ok=True)
    boxes = 0
    for photo, image in photos.items():
        label = image.replace("/images/", "/labels/").rsplit(".", 1)[0] + ".txt"
        lines = git_file(mirror, COMMIT, label).decode().split("\n") if label in files else []
        rows = ["0 " + line.split(maxsplit=1)[1] for line in lines if len(line.split()) == 5]
        (out / "images" / "val" / f"{photo}.jpg").write_bytes(git_file(mirror, COMMIT, image))
        (out / "labels" / "val" / f"{photo}.txt").write_text("".join(r + "\n" for r in rows))
        boxes += len(rows)
    data = {"path": str(out), "train": "images/val", "val": "images/val", "names": ["garbage"]}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return len(photos), boxes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--maltese", type=Path, required=True, help="git directory of SaulVas/ARI3129")
    ap.add_argument("--model", type=Path, action="append", help="model folder (repeatable)")
    args = ap.parse_args()
    models = args.model or sorted(p.parent for p in (REPO / "models" / "gridsight-detector").glob("*/model.onnx"))
    images, boxes = build_eval_set(args.maltese)
    print(f"# out of domain: {images} Maltese street photos, {boxes} bags (SaulVas/ARI3129 @{COMMIT}, eval only)")
    rows = []
    for ev in evaluate({p.name: p for p in models}, OUT / "data.yaml", timing_frames=0):
        garbage = next(c for c in ev.classes if c.name == "garbage")
        in_domain = load_manifest(ev.model_dir).metrics.get("per_class", {}).get("garbage", {}).get("AP50")
        rows.append(f"| {ev.name} | {in_domain if in_domain is not None else '–'} | {garbage.ap50:.3f} "
                    f"| {garbage.precision:.2f} / {garbage.recall:.2f} |")  # fmt: skip
    print("| model | garbage AP50 in domain (its manifest) | garbage AP50 out of domain | P / R there |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
