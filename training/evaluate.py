"""Evaluate shipped detection models on a labelled dataset split, through the runtime.

Inference goes through `detector.analysis.onnx_detector.OnnxModel`, so the numbers measure
exactly what ships: the model's (possibly rectangular) letterbox, its normalisation, its
class-aware NMS and its manifest's thresholds. Each model runs twice per image:

* *ranked*: the manifest's NMS IoU but a very low score threshold (0.001), with up to 300
  boxes per image, for the precision-recall curve: AP50 and AP50-95 per class, COCO-style
  (greedy matching in score order, 101-point interpolated precision, IoU 0.50:0.05:0.95);
* *shipped*: the manifest unchanged; precision, recall and the confusion summary at IoU 0.5
  describe the operating point the cameras will see.

Classes are matched by name: only classes both the model and the dataset know are scored;
the others are listed as not evaluated (boxes of a class the dataset lacks are ignored:
nothing says whether they are right). The speed of each model is the median time of
`OnnxModel.predict` on one frame with one intra-op thread (preprocessing, inference, NMS),
measured round-robin across the models so that a busy machine slows them alike.

The scoring itself (`score_detections`) is pure numpy and needs neither ONNX nor torch.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from numpy.typing import NDArray

from detector.analysis.onnx_detector import MODEL_FILENAME, OnnxModel
from detector.models.manifest import MANIFEST_FILENAME, load_manifest
from detector.types import Observations
from training.datasets import DatasetError, ImportReport, read_yolo

#: IoU thresholds of AP50-95 (COCO)
IOU_THRESHOLDS: NDArray[np.float64] = np.linspace(0.5, 0.95, 10)
#: recall points of COCO's interpolated precision
_RECALL_POINTS: NDArray[np.float64] = np.linspace(0.0, 1.0, 101)
#: score threshold of the ranked run (ultralytics' val uses the same)
AP_CONF = 0.001
#: boxes per image kept for AP (after NMS), as ultralytics' val
AP_MAX_DETECTIONS = 300
#: candidates per image given to NMS in the ranked run (ultralytics' max_nms); OnnxModel
#: passes `max_detections` to OpenCV's NMS as top_k, which cuts candidates *before* NMS
_AP_NMS_CANDIDATES = 30000


# -- data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageBoxes:
    """Boxes of one image: pixel `xyxy` (n, 4), class index `cls` (n,) into the evaluated
    class list, and `scores` (n,) (1 for ground truth)."""

    xyxy: NDArray[np.float64]
    cls: NDArray[np.intp]
    scores: NDArray[np.float64]

    def __post_init__(self) -> None:
        n = len(self.cls)
        if self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must have shape ({n}, 4), got {self.xyxy.shape}")
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), got {self.scores.shape}")

    @classmethod
    def build(
        cls,
        xyxy: Sequence[Sequence[float]] | NDArray[np.floating],
        classes: Sequence[int] | NDArray[np.integer],
        scores: Sequence[float] | NDArray[np.floating] | None = None,
    ) -> ImageBoxes:
        """From plain lists; scores default to 1."""
        k = np.asarray(classes, np.intp).reshape(-1)
        s = np.ones(len(k)) if scores is None else np.asarray(scores, np.float64).reshape(-1)
        return cls(np.asarray(xyxy, np.float64).reshape(-1, 4), k, s)

    def __len__(self) -> int:
        return len(self.cls)

    def top(self, n: int) -> ImageBoxes:
        """The `n` best-scored boxes."""
        if len(self) <= n:
            return self
        keep = np.argsort(-self.scores, kind="stable")[:n]
        return ImageBoxes(self.xyxy[keep], self.cls[keep], self.scores[keep])


@dataclass(frozen=True)
class LabelledImage:
    path: Path
    classes: tuple[str, ...]  # one per box
    cxcywh: NDArray[np.float64]  # (n, 4) normalised YOLO boxes


@dataclass(frozen=True)
class DatasetSplit:
    data: Path  # the data.yaml
    split: str
    names: tuple[str, ...]
    images: tuple[LabelledImage, ...]
    problems: tuple[str, ...] = ()  # label lines skipped (bad format, unknown class id, outside the image)


def load_split(data: Path, split: str = "val") -> DatasetSplit:
    """The images and labels of `split` of the YOLO dataset whose `data.yaml` is `data`.

    The layout is the one `training.datasets` writes: data.yaml at the root beside
    `images/<split>/` and `labels/<split>/`; label lines it cannot use are skipped and listed
    in `problems`.

    Raises:
        DatasetError: data.yaml is unreadable or has no names, or the split has no images.
    """
    data = Path(data)
    split = "val" if split in {"valid", "validation"} else split  # as training.datasets names it
    try:
        meta = yaml.safe_load(data.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise DatasetError(f"{data}: cannot read: {e}") from e
    names = meta.get("names")
    if isinstance(names, dict):
        names = [names[k] for k in sorted(names, key=int)]
    if not isinstance(names, list) or not names:
        raise DatasetError(f"{data}: names: expected a list or an id → name mapping")
    report = ImportReport()
    images = tuple(
        LabelledImage(
            s.image,
            tuple(b.cls for b in s.boxes),
            np.asarray([(b.cx, b.cy, b.w, b.h) for b in s.boxes], np.float64).reshape(-1, 4),
        )
        for s in read_yolo(data.parent, report)
        if s.split == split
    )
    if not images:
        raise DatasetError(f"{data}: split {split!r} has no images under {data.parent / 'images'}")
    return DatasetSplit(data, split, tuple(map(str, names)), images, tuple(report.problems))


def _truth(image: LabelledImage, index: Mapping[str, int], w: int, h: int) -> ImageBoxes:
    keep = [i for i, c in enumerate(image.classes) if c in index]
    cx, cy, bw, bh = image.cxcywh[keep].T
    xyxy = np.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h], axis=1)
    return ImageBoxes.build(xyxy, [index[image.classes[i]] for i in keep])


def _predicted(obs: Observations, model_classes: Sequence[str], index: Mapping[str, int], w: int, h: int) -> ImageBoxes:
    names = [model_classes[e["class_id"]] for e in obs.extras]
    keep = [i for i, c in enumerate(names) if c in index]
    xyxy = obs.xyxy[keep].astype(np.float64) * (w, h, w, h)
    return ImageBoxes.build(xyxy, [index[names[i]] for i in keep], obs.scores[keep])


# -- scoring (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassMetrics:
    """One class (or "all": the mean over classes with instances)."""

    name: str
    images: int  # images holding at least one instance ("all": every image of the split)
    instances: int
    precision: float  # at the operating point, IoU 0.5; NaN without instances
    recall: float
    ap50: float  # from the ranked predictions; NaN without instances
    ap50_95: float


@dataclass(frozen=True)
class Confusion:
    """Shipped predictions against ground truth at IoU 0.5, by class name.

    Every true box is exactly one of: `correct` (found as itself), `confused` (not found as
    itself but covered by a box of another class: true → predicted → count) or `missed`.
    `false_positives` counts, per predicted class, boxes on no true box of any class
    (background, or a duplicate of an object already found).
    """

    correct: dict[str, int] = field(default_factory=dict)
    confused: dict[str, dict[str, int]] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    false_positives: dict[str, int] = field(default_factory=dict)


def box_iou(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU of every box of `a` (n, 4) with every box of `b` (m, 4), xyxy; (n, m)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(iou: NDArray[np.float64], threshold: float, taken: NDArray[np.bool_]) -> NDArray[np.intp]:
    """COCO matching: rows (predictions, best score first) each take the free column of highest
    IoU ≥ threshold; returns the matched column per row (-1: none) and marks `taken`."""
    match = np.full(iou.shape[0], -1, np.intp)
    if not iou.size:
        return match
    for d in np.flatnonzero(iou.max(axis=1) >= threshold):
        row = np.where(taken, -1.0, iou[d])
        g = int(row.argmax())
        if row[g] >= threshold:
            match[d], taken[g] = g, True
    return match


def _match(truth: ImageBoxes, pred: ImageBoxes, thresholds: Sequence[float]) -> NDArray[np.intp]:
    """(len(pred), T): the true box of its own class that prediction i matches at threshold t, or -1."""
    out = np.full((len(pred), len(thresholds)), -1, np.intp)
    for k in np.unique(pred.cls):
        d = np.flatnonzero(pred.cls == k)
        d = d[np.argsort(-pred.scores[d], kind="stable")]
        g = np.flatnonzero(truth.cls == k)
        if not g.size:
            continue
        iou = box_iou(pred.xyxy[d], truth.xyxy[g])
        for t, thr in enumerate(thresholds):
            m = greedy_match(iou, thr, np.zeros(g.size, bool))
            out[d[m >= 0], t] = g[m[m >= 0]]
    return out


def average_precision(tp: NDArray[np.bool_], scores: NDArray[np.floating], n_true: int) -> float:
    """COCO's 101-point interpolated AP of one class at one IoU threshold.

    `tp` and `scores` hold every prediction of the class over the whole split; NaN when
    `n_true` is 0.
    """
    if n_true == 0:
        return math.nan
    if not len(tp):
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    hits = np.asarray(tp, bool)[order]
    tpc, fpc = np.cumsum(hits), np.cumsum(~hits)
    recall = tpc / n_true
    precision = tpc / (tpc + fpc)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope
    idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
    q = np.zeros(len(_RECALL_POINTS))
    ok = idx < len(precision)
    q[ok] = precision[idx[ok]]
    return float(q.mean())


def _confusion(
    truth: ImageBoxes, shipped: ImageBoxes, match50: NDArray[np.intp], classes: Sequence[str], c: Confusion
) -> None:
    """Adds one image to `c`; `match50` is `_match` of the shipped boxes at IoU 0.5."""
    tp50 = match50 >= 0
    own = np.zeros(len(truth), bool)
    own[match50[tp50]] = True
    for g in np.flatnonzero(own):
        name = classes[truth.cls[g]]
        c.correct[name] = c.correct.get(name, 0) + 1
    free_t = np.flatnonzero(~own)
    free_p = np.flatnonzero(~tp50)
    free_p = free_p[np.argsort(-shipped.scores[free_p], kind="stable")]
    other = np.zeros(len(free_p), bool)
    if free_t.size and free_p.size:
        iou = box_iou(shipped.xyxy[free_p], truth.xyxy[free_t])
        iou[shipped.cls[free_p][:, None] == truth.cls[free_t][None, :]] = 0.0  # same class: a duplicate
        m = greedy_match(iou, 0.5, np.zeros(free_t.size, bool))
        for p, g in zip(np.flatnonzero(m >= 0), m[m >= 0], strict=True):
            true_name, pred_name = classes[truth.cls[free_t[g]]], classes[shipped.cls[free_p[p]]]
            row = c.confused.setdefault(true_name, {})
            row[pred_name] = row.get(pred_name, 0) + 1
        other = m >= 0
        found = np.zeros(free_t.size, bool)
        found[m[m >= 0]] = True
        free_t = free_t[~found]
    for g in free_t:
        name = classes[truth.cls[g]]
        c.missed[name] = c.missed.get(name, 0) + 1
    for p in free_p[~other]:
        name = classes[shipped.cls[p]]
        c.false_positives[name] = c.false_positives.get(name, 0) + 1


def score_detections(
    classes: Sequence[str],
    truth: Sequence[ImageBoxes],
    ranked: Sequence[ImageBoxes],
    shipped: Sequence[ImageBoxes] | None = None,
) -> tuple[list[ClassMetrics], ClassMetrics, Confusion]:
    """Per-class metrics, their mean ("all") and the confusion summary.

    `truth`, `ranked` (low-threshold predictions, for AP) and `shipped` (predictions at the
    operating point, for precision, recall and confusion; default: `ranked`) hold one
    ImageBoxes per image, in the same order, with classes indexing `classes`.

    Raises:
        ValueError: the sequences differ in length or a class index is out of range.
    """
    shipped = ranked if shipped is None else shipped
    if not len(truth) == len(ranked) == len(shipped):
        raise ValueError(f"one entry per image expected: {len(truth)} truth, {len(ranked)} ranked, {len(shipped)}")
    nc = len(classes)
    for b in (*truth, *ranked, *shipped):
        if len(b) and (b.cls.min() < 0 or b.cls.max() >= nc):
            raise ValueError(f"class index out of range 0..{nc - 1}: {sorted(set(b.cls.tolist()))}")
    n_true = np.zeros(nc, int)
    n_images = np.zeros(nc, int)
    tp_r, sc_r, cl_r = [], [], []
    tp_s = np.zeros(nc, int)
    n_s = np.zeros(nc, int)
    confusion = Confusion()
    for t, r, s in zip(truth, ranked, shipped, strict=True):
        n_true += np.bincount(t.cls, minlength=nc)
        n_images += np.bincount(np.unique(t.cls), minlength=nc)
        tp_r.append(_match(t, r, IOU_THRESHOLDS) >= 0)
        sc_r.append(r.scores)
        cl_r.append(r.cls)
        match50 = _match(t, s, (0.5,))[:, 0]
        tp_s += np.bincount(s.cls[match50 >= 0], minlength=nc)
        n_s += np.bincount(s.cls, minlength=nc)
        _confusion(t, s, match50, classes, confusion)
    tp_all = np.concatenate(tp_r) if tp_r else np.zeros((0, len(IOU_THRESHOLDS)), bool)
    sc_all = np.concatenate(sc_r) if sc_r else np.zeros(0)
    cl_all = np.concatenate(cl_r) if cl_r else np.zeros(0, np.intp)
    per_class = []
    for k, name in enumerate(classes):
        sel = cl_all == k
        aps = [average_precision(tp_all[sel, t], sc_all[sel], int(n_true[k])) for t in range(len(IOU_THRESHOLDS))]
        if n_true[k]:
            precision = tp_s[k] / n_s[k] if n_s[k] else 0.0
            recall = tp_s[k] / n_true[k]
        else:
            precision = recall = math.nan
        per_class.append(
            ClassMetrics(
                name, int(n_images[k]), int(n_true[k]), float(precision), float(recall), aps[0], float(np.mean(aps))
            )
        )
    scored = [m for m in per_class if m.instances]

    def mean(attr: str) -> float:
        return float(np.mean([getattr(m, attr) for m in scored])) if scored else math.nan

    overall = ClassMetrics(
        "all",
        len(truth),
        int(n_true.sum()),
        mean("precision"),
        mean("recall"),
        mean("ap50"),
        mean("ap50_95"),
    )
    return per_class, overall, confusion


# -- running models ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEvaluation:
    """One model on one dataset split."""

    name: str  # the label given to `evaluate`, e.g. "candidate"
    model_dir: Path
    data: Path
    split: str
    input_size: tuple[int, int]  # width, height
    conf: dict[str, float]  # operating point: minimum score per evaluated class
    iou: float  # NMS IoU of the manifest
    classes: list[ClassMetrics]  # evaluated (shared) classes, in dataset order
    all: ClassMetrics
    confusion: Confusion
    model_only: list[str]  # model classes absent from the dataset: not evaluated
    data_only: list[str]  # dataset classes the model does not know: not evaluated
    ms_per_frame: float | None  # median OnnxModel.predict time of one frame, one intra-op thread
    problems: tuple[str, ...] = ()  # dataset label lines skipped while loading

    def metrics(self) -> dict[str, Any]:
        """A summary for the model manifest's `metrics`."""

        def r(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 4)

        return {
            "dataset": str(self.data),
            "split": self.split,
            "images": self.all.images,
            "precision": r(self.all.precision),
            "recall": r(self.all.recall),
            "mAP50": r(self.all.ap50),
            "mAP50-95": r(self.all.ap50_95),
            "per_class": {
                m.name: {"P": r(m.precision), "R": r(m.recall), "AP50": r(m.ap50), "AP50-95": r(m.ap50_95)}
                for m in self.classes
            },
            "ms_per_frame_1thread": None if self.ms_per_frame is None else round(self.ms_per_frame, 2),
        }


@contextmanager
def ranked_model(model_dir: Path) -> Iterator[OnnxModel]:
    """The model with its manifest's NMS IoU but a score threshold of AP_CONF and room for
    every NMS candidate: a temporary folder holding a link to the same ONNX file."""
    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir)
    data = manifest.model_dump(mode="json")
    data["thresholds"] = {**data["thresholds"], "conf": AP_CONF, "per_class_conf": {}}
    data["max_detections"] = _AP_NMS_CANDIDATES
    with tempfile.TemporaryDirectory(prefix="gridsight-eval-") as tmp:
        link = Path(tmp) / MODEL_FILENAME
        try:
            os.symlink((model_dir / MODEL_FILENAME).resolve(), link)
        except OSError:
            shutil.copyfile(model_dir / MODEL_FILENAME, link)
        (Path(tmp) / MANIFEST_FILENAME).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        yield OnnxModel(Path(tmp))


def read_image(path: Path) -> NDArray[np.uint8]:
    """The BGR image at `path`.

    Raises:
        DatasetError: the file is missing or not a decodable image.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: cannot decode image")
    return image


def time_models(
    models: Sequence[OnnxModel], frames: Sequence[NDArray[np.uint8]], *, warmup: int = 2
) -> list[float | None]:
    """Median ms of `predict` on one frame per model, the models taking turns on each frame."""
    if not frames:
        return [None] * len(models)
    for m in models:
        for _ in range(warmup):
            m.predict([frames[0]])
    times: list[list[float]] = [[] for _ in models]
    for frame in frames:
        for m, t in zip(models, times, strict=True):
            t0 = time.perf_counter()
            m.predict([frame])
            t.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(t) for t in times]


def evaluate_split(
    models: Mapping[str, Path],
    split: DatasetSplit,
    *,
    timing_frames: int = 50,
    max_images: int | None = None,
) -> list[ModelEvaluation]:
    """Evaluates each model of `models` (label → model folder) on `split`.

    `timing_frames` frames of the split (repeated when it has fewer) are used to time the
    models; 0 skips timing. `max_images` limits the images scored (the first ones).

    Raises:
        ModelManifestError, OnnxModelError: a model folder is invalid.
        DatasetError: an image cannot be decoded.
        ValueError: a model shares no class with the dataset.
    """
    images = split.images[:max_images] if max_images else split.images
    shipped_models = {label: OnnxModel(Path(d), intra_op_num_threads=1) for label, d in models.items()}
    results = []
    for label, model in shipped_models.items():
        data_names = list(split.names)
        shared = [c for c in data_names if c in model.classes]
        if not shared:
            raise ValueError(
                f"model {label!r} ({model.path.parent}) shares no class with {split.data}:"
                f" model {list(model.classes)}, dataset {data_names}"
            )
        index = {c: i for i, c in enumerate(shared)}
        truth, ranked, shipped = [], [], []
        with ranked_model(model.path.parent) as low:
            for item in images:
                image = read_image(item.path)
                h, w = image.shape[:2]
                truth.append(_truth(item, index, w, h))
                r = _predicted(low.predict([image])[0], model.classes, index, w, h)
                ranked.append(r.top(AP_MAX_DETECTIONS))
                shipped.append(_predicted(model.predict([image])[0], model.classes, index, w, h))
        per_class, overall, confusion = score_detections(shared, truth, ranked, shipped)
        m = model.manifest
        results.append(
            ModelEvaluation(
                name=label,
                model_dir=model.path.parent,
                data=split.data,
                split=split.split,
                input_size=(m.input.width, m.input.height),
                conf={c: t for c, t in zip(m.classes, m.conf_thresholds(), strict=True) if c in index},
                iou=m.thresholds.iou,
                classes=per_class,
                all=overall,
                confusion=confusion,
                model_only=[c for c in model.classes if c not in data_names],
                data_only=[c for c in data_names if c not in model.classes],
                ms_per_frame=None,
                problems=split.problems,
            )
        )
    if timing_frames > 0:
        paths = [images[i % len(images)].path for i in range(timing_frames)]
        decoded = {p: read_image(p) for p in set(paths)}
        ms = time_models(list(shipped_models.values()), [decoded[p] for p in paths])
        results = [replace(r, ms_per_frame=t) for r, t in zip(results, ms, strict=True)]
    return results


def evaluate(
    models: Mapping[str, Path] | Sequence[Path],
    data: Path,
    *,
    split: str = "val",
    timing_frames: int = 50,
    max_images: int | None = None,
) -> list[ModelEvaluation]:
    """Evaluates model folders (model.onnx + manifest.yaml) on `split` of the YOLO dataset
    `data` (its data.yaml). `models` maps a label ("candidate", "active") to a folder; a plain
    sequence is labelled by folder name.

    Raises:
        DatasetError: the dataset or split is unreadable or empty.
        ModelManifestError, OnnxModelError: a model folder is invalid.
        ValueError: a model shares no class with the dataset.
    """
    if not isinstance(models, Mapping):
        models = {Path(d).name: Path(d) for d in models}
    return evaluate_split(models, load_split(Path(data), split), timing_frames=timing_frames, max_images=max_images)


# -- report --------------------------------------------------------------------------------


def _f(x: float) -> str:
    return "    -" if math.isnan(x) else f"{x:.3f}"


def render(evaluations: Sequence[ModelEvaluation]) -> str:
    """One table, the models side by side: P and R at the operating point, AP50, AP50-95."""
    if not evaluations:
        return "no models evaluated"
    first = evaluations[0]
    names: list[str] = []
    for e in evaluations:
        names += [m.name for m in e.classes if m.name not in names]
    by_model = [{m.name: m for m in e.classes} for e in evaluations]
    counts = {m.name: m for e in evaluations for m in e.classes}
    width = max(12, *(len(n) for n in names))
    col = 29
    head = f"{'class':<{width}} {'images':>6} {'boxes':>6}"
    out = [
        f"{first.data} split {first.split}: {first.all.images} images",
        head + "".join(f" | {e.name[: col - 1]:<{col - 1}}" for e in evaluations),
        " " * len(head) + " |  P     R     AP50  AP50-95" * len(evaluations),
    ]
    for name in [*names, "all"]:
        ref = first.all if name == "all" else counts[name]
        row = f"{name:<{width}} {ref.images:>6} {ref.instances:>6}"
        for e, metrics in zip(evaluations, by_model, strict=True):
            m = e.all if name == "all" else metrics.get(name)
            row += (
                f" | {'':<{col - 1}}"
                if m is None
                else f" | {_f(m.precision)} {_f(m.recall)} {_f(m.ap50)} {_f(m.ap50_95):<7}"
            )
        out.append(row)
    out.append(
        f"{'ms/frame (1 thread)':<{len(head)}}"
        + "".join(f" | {'-' if e.ms_per_frame is None else f'{e.ms_per_frame:.1f}':<{col - 1}}" for e in evaluations)
    )
    out.append(
        f"{'input, conf, iou':<{len(head)}}"
        + "".join(
            f" | {f'{w}x{h} {_conf_text(e.conf)} {e.iou:g}':<{col - 1}}" for e in evaluations for w, h in [e.input_size]
        )
    )
    out.append("P, R: operating point (manifest thresholds), IoU 0.5; AP: COCO 101-point; all: mean over classes")
    for e in evaluations:
        skipped = []
        if e.model_only:
            skipped.append(f"model classes not in the dataset: {', '.join(e.model_only)}")
        if e.data_only:
            skipped.append(f"dataset classes the model lacks: {', '.join(e.data_only)}")
        if skipped:
            out.append(f"{e.name}: not evaluated — {'; '.join(skipped)}")
    out.append("confusion at the operating point (IoU 0.5): found / as another class / missed; false positives")
    for e in evaluations:
        c = e.confusion
        parts = []
        for m in e.classes:
            other = c.confused.get(m.name, {})
            as_other = ", ".join(f"{n} {k}" for n, k in sorted(other.items()))
            parts.append(
                f"{m.name} {c.correct.get(m.name, 0)}/{sum(other.values())}"
                + (f" ({as_other})" if as_other else "")
                + f"/{c.missed.get(m.name, 0)}"
            )
        fps = ", ".join(f"{n} {k}" for n, k in c.false_positives.items() if k) or "none"
        out.append(f"  {e.name}: {'; '.join(parts)}; false positives: {fps}")
    if first.problems:
        out.append(f"label lines skipped while loading: {len(first.problems)} (ModelEvaluation.problems)")
    return "\n".join(out)


def _conf_text(conf: Mapping[str, float]) -> str:
    values = set(conf.values())
    return f"{values.pop():g}" if len(values) == 1 else "per-class"
