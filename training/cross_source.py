"""Leave-one-source-out evaluation: what a model scores on a source it never saw.

A validation split drawn from the same source as the training images (same cameras, same
photographers, same watermarks) overstates what a city's own cameras will see. Here each
source of a merged dataset (the prefix `training.datasets` gives its files,
`<source>__<name>`) is held out in turn: a model is trained with the same recipe on the
other sources' training images only and scored on the held-out source's validation split,
beside the in-domain model (trained on every source, or given) on the same images.

Only classes that some other source also has can be learnt without the held-out source;
the others are listed as such, not scored as zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from training.evaluate import DatasetSplit, LabelledImage, ModelEvaluation, evaluate_split, load_split
from training.export import export_fp32
from training.train import TrainSpec, train

SEPARATOR = "__"


def source_of(image: LabelledImage) -> str:
    """The source an imported image came from (its file-name prefix)."""
    stem = image.path.stem
    return stem.split(SEPARATOR, 1)[0] if SEPARATOR in stem else ""


def by_source(split: DatasetSplit) -> dict[str, tuple[LabelledImage, ...]]:
    out: dict[str, list[LabelledImage]] = {}
    for im in split.images:
        out.setdefault(source_of(im), []).append(im)
    return {k: tuple(v) for k, v in sorted(out.items())}


def _write_data(out_dir: Path, names: Sequence[str], train_images: Sequence[LabelledImage], val: Path) -> Path:
    """A data.yaml training on exactly `train_images` (a list file), validating on `val`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "train.txt").write_text("".join(f"{im.path.resolve()}\n" for im in train_images))
    data = {"train": str(out_dir / "train.txt"), "val": str(val), "names": list(names)}
    (out_dir / "data.yaml").write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out_dir / "data.yaml"


@dataclass(frozen=True)
class HeldOut:
    """One held-out source: its validation images, and both models scored on them."""

    source: str
    images: int
    learnable: tuple[str, ...]  # its classes that another source has too
    unlearnable: tuple[str, ...]  # its classes no other source has
    in_domain: ModelEvaluation
    cross: ModelEvaluation | None  # None: no class of it is learnable without it, so none was trained


@dataclass(frozen=True)
class Recipe:
    """How every model of the comparison is trained and exported (the same for all)."""

    model: str = "yolo11n.yaml"
    imgsz: int = 416
    epochs: int = 30
    batch: int = 16
    close_mosaic: int = 10
    width: int = 640
    height: int = 384

    def build(self, data: Path, run_dir: Path, config_dir: Path) -> Path:
        """Trains (resuming an interrupted run) and exports FP32; returns the model folder."""
        spec = TrainSpec(data=data, run_dir=run_dir, model=self.model, imgsz=self.imgsz, epochs=self.epochs,
                         batch=self.batch, close_mosaic=self.close_mosaic)  # fmt: skip
        best = train(spec, config_dir=config_dir)
        model_dir = run_dir / "fp32"
        if not (model_dir / "model.onnx").exists():
            export_fp32(best, model_dir, width=self.width, height=self.height, name=run_dir.name,
                        config_dir=config_dir)  # fmt: skip
        return model_dir


def cross_source(
    data: Path,
    runs: Path,
    recipe: Recipe,
    *,
    config_dir: Path,
    in_domain: Path | None = None,
    without: dict[str, Path] | None = None,
) -> list[HeldOut]:
    """Holds out each source of the dataset `data` in turn (see the module doc).

    `in_domain`: a model folder trained on every source; None trains one with `recipe`.
    `without`: source → a model folder known never to have seen it (a model older than the
    source), used instead of training one. Runs go under `runs/` (`all/`, `without-<source>/`)
    and resume where they stopped.

    Raises:
        ValueError: the dataset has fewer than two sources.
        DatasetError: the dataset cannot be read.
    """
    data, runs = Path(data).resolve(), Path(runs).resolve()
    train_split, val_split = load_split(data, "train"), load_split(data, "val")
    train_by, val_by = by_source(train_split), by_source(val_split)
    if len(train_by) < 2:
        raise ValueError(f"{data}: one source ({', '.join(train_by) or 'none'}): nothing to hold out")
    if unknown := set(without or {}) - set(train_by):
        raise ValueError(f"without: no source {', '.join(sorted(unknown))} in {data} (sources: {', '.join(train_by)})")
    val_dir = data.parent / "images" / "val"
    if in_domain is None:
        in_domain = recipe.build(_write_data(runs / "all", train_split.names, train_split.images, val_dir),
                                 runs / "all", config_dir)  # fmt: skip
    out = []
    for source, held in val_by.items():
        others = [im for s, ims in train_by.items() if s != source for im in ims]
        if not others:
            continue
        seen_elsewhere = {c for im in others for c in im.classes}
        mine = sorted({c for im in held for c in im.classes}, key=train_split.names.index)
        learnable = tuple(c for c in mine if c in seen_elsewhere)
        unlearnable = tuple(c for c in mine if c not in seen_elsewhere)
        split = replace(val_split, images=held, split=f"val of {source}")
        if not learnable:  # nothing a model without it could learn: no model to train
            (in_ev,) = evaluate_split({"in-domain": Path(in_domain)}, split, timing_frames=0)
            out.append(HeldOut(source, len(held), learnable, unlearnable, in_ev, None))
            continue
        run_dir = runs / f"without-{source}"
        given = (without or {}).get(source)
        model = given or recipe.build(_write_data(run_dir, train_split.names, others, val_dir), run_dir, config_dir)
        in_ev, cross_ev = evaluate_split({"in-domain": Path(in_domain), "cross": model}, split, timing_frames=0)
        out.append(HeldOut(source, len(held), learnable, unlearnable, in_ev, cross_ev))
    return out


def render(results: Sequence[HeldOut]) -> str:
    """The table a trainer reads: per held-out source and class, in-domain AP50 beside cross-source AP50."""
    lines = [
        "| held-out source | images | class | boxes | in-domain AP50 | cross-source AP50 | drop |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        ins = {m.name: m for m in r.in_domain.classes}
        cross = {m.name: m for m in r.cross.classes} if r.cross is not None else {}
        for c in r.learnable:
            a, b = ins[c].ap50, cross[c].ap50
            lines.append(f"| {r.source} | {r.images} | {c} | {ins[c].instances} | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
        for c in r.unlearnable:
            lines.append(f"| {r.source} | {r.images} | {c} | {ins[c].instances} | {ins[c].ap50:.3f} | – | "
                         "no other source has it |")  # fmt: skip
    if results:
        lines.append(f"\nin-domain model: {results[0].in_domain.model_dir}")
        lines += [f"without {r.source}: {r.cross.model_dir}" for r in results if r.cross is not None]
    return "\n".join(lines)
