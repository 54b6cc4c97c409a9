"""Train an ultralytics YOLO detector offline, reproducibly and resumably.

Offline means no download attempt at all: ultralytics fetches fonts for its plots and
pretrained weights unless told otherwise, so `offline_env` points `YOLO_CONFIG_DIR` at a
folder of our own holding local TTF fonts under the names it looks for, sets
`YOLO_OFFLINE`, and training always starts from a model *YAML* (random weights) or a local
checkpoint. Seeds are fixed and `deterministic` is on. A run writes `last.pt` every epoch;
calling `train` again on the same run folder resumes it where it stopped, from a whole copy
if the kill cut last.pt off mid-write.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ultralytics import YOLO

#: the font names ultralytics looks up in its config dir (it downloads them otherwise)
_FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")
SPEC_FILE = "gridsight_train.json"
WHOLE = "whole"  # weights/whole/: the last checkpoints known to be written to the end


@dataclass(frozen=True)
class TrainSpec:
    data: Path  # the dataset's data.yaml
    run_dir: Path  # where weights, logs and the spec go
    model: str = "yolo11n.yaml"  # architecture YAML (from scratch) or a local .pt to fine-tune
    imgsz: int = 416
    epochs: int | None = None  # new run: 60; resumed run: None keeps the stored length
    batch: int = 16
    seed: int = 0
    workers: int = 2
    patience: int = 30
    close_mosaic: int | None = None  # new run: 10; resumed run: None keeps the stored value
    # epochs of LR rising from 0 (ultralytics: 3); a short fine-tune sets 0 to decay over all of its epochs
    warmup_epochs: float = 3.0
    # None: ultralytics picks (AdamW at ~0.0009 on a small run), a peak that knocks a trained model back for epochs
    lr0: float | None = None
    cache: bool = True  # decoded images in RAM: the CPU decodes each image once, not every epoch
    repeat: tuple[tuple[str, int], ...] = ()  # (class, n): training images holding it are seen n times an epoch


def offline_env(config_dir: Path) -> None:
    """Sets the environment so ultralytics never goes online; call before importing it."""
    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    missing = [n for n in _FONT_NAMES if not (config_dir / n).exists()]
    if missing:
        from matplotlib import font_manager  # ultralytics depends on matplotlib

        font = font_manager.findfont("DejaVu Sans")
        for name in missing:
            shutil.copyfile(font, config_dir / name)
    os.environ["YOLO_CONFIG_DIR"] = str(config_dir.resolve())
    os.environ["YOLO_OFFLINE"] = "1"


def _all_cores(model: YOLO) -> YOLO:
    """On CPU ultralytics trains with one thread fewer than there are cores: half of a 2-core machine."""
    import torch

    model.add_callback("on_pretrain_routine_start", lambda _trainer: torch.set_num_threads(os.cpu_count() or 1))
    return model


def _finished(last: Path) -> bool:
    """ultralytics strips the optimizer from last.pt when the final epoch is done."""
    return _load(last).get("optimizer") is None


def _load(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def _replace(src: Path, dst: Path) -> None:
    """Copies so that `dst` is always whole: a kill mid-copy leaves the old file."""
    tmp = dst.with_name(dst.name + ".part")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _keep_whole_copies(model: YOLO) -> YOLO:
    """ultralytics writes last.pt and best.pt in place, so a run killed mid-write leaves a cut
    file; after each save a whole copy goes to weights/whole/, which `_mend` restores from."""

    def copy(trainer) -> None:
        whole = Path(trainer.wdir) / WHOLE
        whole.mkdir(exist_ok=True)
        for path in (Path(trainer.last), Path(trainer.best)):
            if path.exists():
                _replace(path, whole / path.name)

    model.add_callback("on_model_save", copy)
    return model


def _mend(weights: Path) -> None:
    """A checkpoint that does not load (cut off by a kill) is replaced by its last whole copy,
    one epoch older; with none, it goes, and the run starts again."""
    for path in (weights / "last.pt", weights / "best.pt"):
        if not path.exists():
            continue
        try:
            _load(path)
        except (EOFError, RuntimeError, pickle.UnpicklingError) as e:
            whole = weights / WHOLE / path.name
            if whole.exists():
                print(f"{path} was cut off mid-write ({e!r}); taking the copy of the epoch before", flush=True)
                _replace(whole, path)
            else:
                print(f"{path} was cut off mid-write ({e!r}) and has no earlier copy; starting over", flush=True)
                path.unlink()
                if path.name == "last.pt":  # the new run writes its own rows
                    (weights.parent / "results.csv").unlink(missing_ok=True)


def train(spec: TrainSpec, *, config_dir: Path, command: list[str] | None = None) -> Path:
    """Trains (or resumes) the run in `spec.run_dir`; returns the best weights file.

    Raises:
        FileNotFoundError: the dataset YAML or a local start checkpoint does not exist.
    """
    offline_env(config_dir)
    from ultralytics import YOLO

    run_dir = Path(spec.run_dir).resolve()
    weights = run_dir / "weights"
    last = weights / "last.pt"
    _mend(weights)
    if last.exists() and not _finished(last):
        _reschedule(last, spec)
        _note_resume(run_dir, command)
        print(f"resuming {last}", flush=True)
        _keep_whole_copies(_all_cores(YOLO(str(last)))).train(resume=True)
        return weights / "best.pt"
    if last.exists():
        print(f"{run_dir}: already trained to the end; start a new run folder to train again", flush=True)
        return weights / "best.pt"
    if not Path(spec.data).exists():
        raise FileNotFoundError(f"data: {spec.data} does not exist")
    if spec.model.endswith(".pt") and not Path(spec.model).exists():
        raise FileNotFoundError(f"model: {spec.model} does not exist (no downloads: give a local file or a YAML)")
    run_dir.mkdir(parents=True, exist_ok=True)
    data = repeat_classes(Path(spec.data), dict(spec.repeat), run_dir) if spec.repeat else Path(spec.data)
    record = {**asdict(spec), "data": str(spec.data), "run_dir": str(spec.run_dir)}
    record["command"] = shlex.join(command or sys.argv)
    (run_dir / SPEC_FILE).write_text(json.dumps(record, indent=1))
    _keep_whole_copies(_all_cores(YOLO(spec.model))).train(
        data=str(data.resolve()),
        epochs=spec.epochs or 60,
        imgsz=spec.imgsz,
        batch=spec.batch,
        device="cpu",
        amp=False,
        seed=spec.seed,
        deterministic=True,
        workers=spec.workers,
        patience=spec.patience,
        close_mosaic=10 if spec.close_mosaic is None else spec.close_mosaic,
        warmup_epochs=spec.warmup_epochs,
        **({} if spec.lr0 is None else {"optimizer": "AdamW", "lr0": spec.lr0}),  # "auto" ignores lr0
        cache="ram" if spec.cache else False,
        pretrained=spec.model.endswith(".pt"),  # fine-tune from a local .pt; a YAML starts from random weights
        plots=False,
        project=str(run_dir.parent),
        name=run_dir.name,
        exist_ok=True,
        verbose=True,
    )
    return weights / "best.pt"


def repeat_classes(data: Path, repeats: dict[str, int], out_dir: Path) -> Path:
    """Writes `out_dir/data.yaml`, whose training list names each image holding a class of
    `repeats` that many times (the largest, if it holds several); validation is unchanged.

    A class with few boxes (garbage has half as many as the bins in the bundled data) then
    gets as many gradient steps per epoch as the others, without copying any image.

    Raises:
        ValueError: a class is not in the dataset, or a count is below 1.
    """
    import yaml

    from training.evaluate import load_split

    train = load_split(Path(data), "train")
    for name, n in repeats.items():
        if name not in train.names:
            raise ValueError(f"repeat: {name!r} is not a class of {data} (classes: {', '.join(train.names)})")
        if n < 1:
            raise ValueError(f"repeat: {name}={n}: the count must be at least 1")
    lines = []
    for im in train.images:
        lines += [str(im.path)] * max([repeats.get(c, 1) for c in im.classes], default=1)
    out_dir = Path(out_dir).resolve()
    (out_dir / "train.txt").write_text("".join(f"{line}\n" for line in sorted(lines)))
    root = Path(data).resolve().parent  # the layout training.datasets writes: images/train, images/val
    out = {
        "path": str(root),
        "train": str(out_dir / "train.txt"),
        "val": str(root / "images" / "val"),
        "names": list(train.names),
    }
    (out_dir / "data.yaml").write_text(yaml.safe_dump(out, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return out_dir / "data.yaml"


def _reschedule(last: Path, spec: TrainSpec) -> None:
    """A resumed run may be given a different length (e.g. to fit the time left in a session).

    ultralytics resumes with the arguments stored in the checkpoint; the learning-rate
    schedule and the mosaic switch-off follow `epochs` and `close_mosaic` from there on.
    """
    import torch

    ckpt = _load(last)
    args = ckpt["train_args"]
    want = {k: v for k, v in (("epochs", spec.epochs), ("close_mosaic", spec.close_mosaic)) if v is not None}
    if all(args.get(k) == v for k, v in want.items()):
        return
    if spec.epochs is not None and spec.epochs <= ckpt["epoch"] + 1:
        raise ValueError(f"epochs: {spec.epochs} is not after the last finished epoch ({ckpt['epoch'] + 1})")
    print(f"resuming with {want} (was epochs={args.get('epochs')}, close_mosaic={args.get('close_mosaic')})")
    args.update(want)
    tmp = last.with_name(last.name + ".part")
    torch.save(ckpt, tmp)
    os.replace(tmp, last)


def _note_resume(run_dir: Path, command: list[str] | None) -> None:
    """The manifest's training command names every resumption too (one may change the length)."""
    path = run_dir / SPEC_FILE
    if path.exists():
        record = json.loads(path.read_text())
        record["command"] += f"; resumed: {shlex.join(command or sys.argv)}"
        path.write_text(json.dumps(record, indent=1))


def train_record(run_dir: Path) -> dict:
    """The spec and command a run was started with (for the model manifest)."""
    path = Path(run_dir) / SPEC_FILE
    return json.loads(path.read_text()) if path.exists() else {}
