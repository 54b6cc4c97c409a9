"""`gridsight train ...`: the model trainer's commands.

Parsers are defined here without importing torch or ultralytics, so the runtime CLI can
list them; each handler imports what it needs (`requirements-train.txt`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_YOLO_CONFIG = Path("var/yolo-config")
DEFAULT_CONFIG = Path("camera_config")
DEFAULT_CLASSES = Path("training/bundled/classes.yaml")


def cmd_dataset_import(args: argparse.Namespace) -> int:
    from training.datasets import ClassMap, DatasetError, import_dataset

    if len(args.source) > 1 and (args.prefix or args.images):
        print("--prefix and --images describe one source: give one --source with them", file=sys.stderr)
        return 2
    for source in args.source:  # merged into one dataset, one source after the other
        try:
            report = import_dataset(
                args.format,
                source,
                args.out,
                ClassMap.load(args.classes),
                prefix=args.prefix,
                images_root=args.images,
                val_fraction=args.val_fraction,
                per_photo=args.one_per_photo,
            )
        except DatasetError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{source}:\n{report.render()}")
    return 0


def cmd_dataset_cctv(args: argparse.Namespace) -> int:
    from training.cctv_look import add_cctv_copies

    if not args.data.is_file():
        print(f"--data: {args.data}: no such file", file=sys.stderr)
        return 1
    counts = add_cctv_copies(args.data, seed=args.seed)
    print(f"{args.data}: {sum(counts.values())} camera-look copies written ({dict(sorted(counts.items()))})")
    return 0


def cmd_dataset_from_reviews(args: argparse.Namespace) -> int:
    from training.datasets import DatasetError
    from training.reviews import export_from_config, parse_since

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        print(f"--since: expected a date (2026-03-01) or an ISO datetime, got {args.since!r}", file=sys.stderr)
        return 2
    try:
        report = export_from_config(
            args.config,
            args.out,
            args.classes,
            val_fraction=args.val_fraction,
            since=since,
            block_hours=args.block_hours,
            prefix=args.prefix,
        )
    except DatasetError as e:
        print(e, file=sys.stderr)
        return 1
    print(report.render())
    return 0


def cmd_class_add(args: argparse.Namespace) -> int:
    from training.classes import ClassAddError, NewClass, add_class

    new = NewClass(
        code=args.code,
        name_zh=args.name_zh,
        name_en=args.name_en,
        detector_class=args.detector_class,
        zones=[z.strip() for z in args.zones.split(",") if z.strip()] if args.zones else [],
        department=args.department,
        legacy_code=args.legacy_code,
        department_code=args.department_code,
        anchor=args.anchor,
        min_score=args.min_score,
        persistence=args.persistence,
        clear_minutes=args.clear_minutes,
        case_type=args.case_type,
        filing_condition=args.filing_condition,
        closing_condition=args.closing_condition,
        time_limit=args.time_limit,
        description=args.description,
    )
    try:
        result = add_class(new, args.config, args.classes)
    except ClassAddError as e:
        print(f"nothing written: {e}", file=sys.stderr)
        return 1
    print(result.render(new))
    return 0


def _persistence(text: str) -> tuple[int, int, float]:
    try:
        k, n, minutes = text.split("/")
        return int(k), int(n), float(minutes)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N/MINUTES, e.g. 3/5/10 (got {text!r})") from None


def _time_limit(text: str) -> tuple[float, str]:
    try:
        amount, unit = text.split()
        return float(amount), unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'AMOUNT UNIT', e.g. '4 working_hours' (got {text!r})") from None


def _class_count(text: str) -> tuple[str, int]:
    name, _, n = text.partition("=")
    if not name or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected CLASS=N, e.g. garbage=2 (got {text!r})")
    return name, int(n)


def cmd_train(args: argparse.Namespace) -> int:
    from training.train import TrainSpec, train

    spec = TrainSpec(
        data=args.data,
        run_dir=args.run,
        model=args.model,
        imgsz=args.imgsz,
        epochs=args.epochs,
        batch=args.batch,
        seed=args.seed,
        workers=args.workers,
        patience=args.patience,
        close_mosaic=args.close_mosaic,
        warmup_epochs=args.warmup,
        lr0=args.lr,
        cache=not args.no_cache,
        repeat=tuple(args.repeat or ()),
    )
    try:
        best = train(spec, config_dir=args.yolo_config, command=["gridsight", "train", *sys.argv[2:]])
    except (FileNotFoundError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"best weights: {best}")
    return 0


def _active_model_dir(config: Path, name: str) -> Path | None:
    """The folder of the version of `name` the cameras run now (database decisions, else the default)."""
    from detector.config import load_config
    from detector.models.deployments import ModelStore, active_version
    from detector.store.db import open_database

    settings = load_config(config).settings
    store = ModelStore(settings.models_dir)
    if name not in store.names():
        return None
    engine, sessions = open_database(settings.database_url)
    try:
        with sessions() as s:
            version = active_version(s, store, name)
    finally:
        engine.dispose()
    return store.path(name, version) if version else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from training.datasets import DatasetError
    from training.evaluate import evaluate, render

    models = {p.name if len(args.model) > 1 else "candidate": p for p in args.model}
    if args.active:
        active = _active_model_dir(args.config, args.active)
        if active is None:
            print(f"note: no active model {args.active!r} to compare with", file=sys.stderr)
        else:
            models[f"active {active.parent.name}/{active.name}"] = active
    try:
        evaluations = evaluate(models, args.data, split=args.split, timing_frames=args.timing_frames)
    except DatasetError as e:
        print(e, file=sys.stderr)
        return 1
    print(render(evaluations))
    return 0


def cmd_cross_source(args: argparse.Namespace) -> int:
    from training.cross_source import Recipe, cross_source, render
    from training.datasets import DatasetError

    recipe = Recipe(model=args.model, imgsz=args.imgsz, epochs=args.epochs, batch=args.batch,
                    close_mosaic=args.close_mosaic, width=args.width, height=args.height)  # fmt: skip
    try:
        without = dict(_source_model(v) for v in args.without)
        results = cross_source(args.data, args.runs, recipe, config_dir=args.yolo_config, in_domain=args.in_domain,
                               without=without)  # fmt: skip
    except (DatasetError, ValueError, FileNotFoundError) as e:
        print(e, file=sys.stderr)
        return 1
    print(render(results))
    return 0


def _source_model(value: str) -> tuple[str, Path]:
    source, sep, model = value.partition("=")
    if not sep or not (Path(model) / "model.onnx").is_file():
        raise ValueError(f"--without {value}: expected SOURCE=MODEL_FOLDER holding a model.onnx")
    return source, Path(model)


def cmd_export(args: argparse.Namespace) -> int:
    from training.datasets import DatasetError
    from training.evaluate import render
    from training.export import ExportError, export

    try:
        result = export(
            args.weights, args.out, data=args.data, width=args.width, height=args.height,
            calibration=args.calibration, int8=not args.no_int8, config_dir=args.yolo_config,
        )  # fmt: skip
    except (ExportError, DatasetError) as e:
        print(e, file=sys.stderr)
        return 1
    if result.evaluations:
        print(render(result.evaluations))
    if result.int8 is not None and result.evaluations:
        print(f"INT8 vs FP32: AP50 drop {result.ap50_drop():+.3f}, {result.speedup():.2f}x faster per frame")
    print(f"exported: {result.fp32}" + (f", {result.int8}" if result.int8 else ""))
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    from training.datasets import dataset_hash
    from training.registry import RegisterError, load_licences, register
    from training.train import train_record

    try:
        licences = load_licences(args.licences) if args.licences else None
        record = train_record(args.run) if args.run else {}
        weights = args.weights or (args.run / "weights" / "best.pt" if args.run else None)
        target = register(
            args.exported, args.models_dir, args.name, args.version,
            licences=licences,
            dataset_hash=dataset_hash(args.dataset) if args.dataset else None,
            training_command=record.get("command"),
            weights=weights if weights and weights.exists() else None,
            make_default=args.default,
        )  # fmt: skip
    except RegisterError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"registered {target} (not active: `gridsight model shadow|promote {args.name} {args.version}`)")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="model trainers: datasets, training, evaluation, export, deployment")
    tsub = train.add_subparsers(dest="train_command", required=True)

    dataset = tsub.add_parser("dataset", help="build training datasets")
    dsub = dataset.add_subparsers(dest="dataset_command", required=True)
    imp = dsub.add_parser("import", help="import a YOLO, COCO or VOC dataset into a GridSight dataset (merges)")
    imp.add_argument("--format", choices=["yolo", "coco", "voc"], required=True)
    imp.add_argument(
        "--source", type=Path, required=True, action="append", help="YOLO/VOC folder or COCO JSON file (repeatable)"
    )
    imp.add_argument("--images", type=Path, help="COCO: folder holding the file_names (default: beside the JSON)")
    imp.add_argument("--classes", type=Path, required=True, help="class mapping YAML (classes: [...], map: {...})")
    imp.add_argument("--out", type=Path, required=True, help="dataset folder to create or extend")
    imp.add_argument("--prefix", help="name prefix of this source's files (default: the source's name)")
    imp.add_argument("--val-fraction", type=float, default=0.15, help="for sources without a validation split")
    imp.add_argument(
        "--one-per-photo",
        action="store_true",
        help="augmented exports (Roboflow's <photo>_jpg.rf.<hash>): one copy of each photo, split by photo "
        "with --val-fraction (the export's copies of a photo cross its splits)",
    )
    imp.set_defaults(func=cmd_dataset_import)
    rev = dsub.add_parser(
        "from-reviews",
        help="operators' verdicts as a dataset: confirmed/relabelled boxes, rejected images as negatives",
    )
    rev.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration folder (database, evidence)")
    rev.add_argument("--out", type=Path, required=True, help="dataset folder to create or extend")
    rev.add_argument("--classes", type=Path, required=True, help="class mapping YAML (problem:<code>: class allowed)")
    rev.add_argument("--val-fraction", type=float, default=0.2, help="share of camera/time groups held out")
    rev.add_argument("--since", help="only frames taken on or after this date (2026-03-01) or ISO datetime")
    rev.add_argument(
        "--block-hours", type=float, default=24,
        help="split unit: one camera's frames in blocks of this many hours (24 = local day; 0 = the whole camera)",
    )  # fmt: skip
    rev.add_argument("--prefix", default="reviews", help="name prefix of the exported files (replaced on re-export)")
    rev.set_defaults(func=cmd_dataset_from_reviews)
    cctv = dsub.add_parser(
        "cctv", help="add a street-camera copy of each training image (low resolution, H.264, low light, IR, rain)"
    )
    cctv.add_argument("--data", type=Path, required=True, help="the dataset's data.yaml (extended in place)")
    cctv.add_argument("--seed", type=int, default=0)
    cctv.set_defaults(func=cmd_dataset_cctv)

    cls = tsub.add_parser("class", help="problem classes")
    csub = cls.add_subparsers(dest="class_command", required=True)
    add = csub.add_parser(
        "add", help="add a problem class: taxonomy entry (review filing) + detector class in the class mapping"
    )
    add.add_argument("--code", required=True, help="GB/T 47678.5 code: 大类 (01-10) + 小类 (3 digits), e.g. 07010")
    add.add_argument("--name-zh", required=True)
    add.add_argument("--name-en", required=True)
    add.add_argument("--detector-class", required=True, help="detector class name; the problem's output")
    add.add_argument("--zones", default="", help="comma-separated zone purposes, e.g. wall,pole (none: whole view)")
    add.add_argument("--department", required=True, help="主管部门")
    add.add_argument("--department-code", help="统一社会信用代码 of the department (18 chars)")
    add.add_argument("--legacy-code", help="CJ/T 214 / GB/T 30428.2 code")
    add.add_argument("--anchor", choices=["bottom_center", "overlap"], help="default: overlap for wall/pole zones")
    add.add_argument("--min-score", type=float, default=0.35)
    add.add_argument("--persistence", type=_persistence, default=(3, 5, 10.0), metavar="K/N/MINUTES")
    add.add_argument("--clear-minutes", type=float, default=10.0)
    add.add_argument("--case-type", choices=["事件", "部件"], default="事件")
    add.add_argument("--filing-condition", default="", help="立案条件")
    add.add_argument("--closing-condition", default="", help="结案条件")
    add.add_argument("--time-limit", type=_time_limit, default=(4.0, "working_hours"), metavar="'AMOUNT UNIT'")
    add.add_argument("--description", help="case description template (default: the generic one)")
    add.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration folder")
    add.add_argument("--classes", type=Path, default=DEFAULT_CLASSES, help="class mapping YAML to add the class to")
    add.set_defaults(func=cmd_class_add)

    run = tsub.add_parser("run", help="train a YOLO detector offline (resumes an interrupted run)")
    run.add_argument("--data", type=Path, required=True, help="the dataset's data.yaml")
    run.add_argument("--run", type=Path, required=True, help="run folder (weights, logs); same folder = resume")
    run.add_argument("--model", default="yolo11n.yaml", help="architecture YAML (from scratch) or a local .pt")
    run.add_argument("--imgsz", type=int, default=416)
    run.add_argument("--epochs", type=int, help="default 60; on a resumed run: a new length for it")
    run.add_argument("--batch", type=int, default=16)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--workers", type=int, default=2)
    run.add_argument("--patience", type=int, default=30)
    run.add_argument("--close-mosaic", type=int, help="last epochs without mosaic (default 10)")
    run.add_argument(
        "--warmup", type=float, default=3.0, help="epochs of LR warm-up (default 3; 0: a fine-tune decays from step 1)"
    )
    run.add_argument(
        "--lr", type=float, help="AdamW at this initial LR (default: ultralytics picks; 0.0009 for 7 classes)"
    )
    run.add_argument("--no-cache", action="store_true", help="decode images from disk every epoch")
    run.add_argument(
        "--repeat",
        type=_class_count,
        action="append",
        metavar="CLASS=N",
        help="show training images holding CLASS N times an epoch (repeatable): more steps for a rare class",
    )
    run.add_argument("--yolo-config", type=Path, default=DEFAULT_YOLO_CONFIG)
    run.set_defaults(func=cmd_train)

    ev = tsub.add_parser("evaluate", help="per-class P, R, AP50, AP50-95, confusion; beside the active model")
    ev.add_argument("--model", type=Path, action="append", required=True, help="model folder (repeat to compare)")
    ev.add_argument("--data", type=Path, required=True, help="the dataset's data.yaml")
    ev.add_argument("--split", default="val")
    ev.add_argument("--active", default="gridsight-detector", help="model name to compare with ('' for none)")
    ev.add_argument("--timing-frames", type=int, default=50, help="frames timed per model (single thread)")
    ev.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="where the active model is decided")
    ev.set_defaults(func=cmd_evaluate)

    xs = tsub.add_parser(
        "cross-source", help="leave-one-source-out: AP50 on each source when trained without it, beside in-domain"
    )
    xs.add_argument("--data", type=Path, required=True, help="a merged dataset's data.yaml (two sources or more)")
    xs.add_argument("--runs", type=Path, required=True, help="folder of the training runs (resumed when rerun)")
    xs.add_argument("--in-domain", type=Path, help="model folder trained on every source (default: train one)")
    xs.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="SOURCE=MODEL",
        help="a model folder that never saw SOURCE (one older than it), instead of training one (repeatable)",
    )
    xs.add_argument("--model", default="yolo11n.yaml", help="architecture YAML or a local .pt to start from")
    xs.add_argument("--imgsz", type=int, default=416)
    xs.add_argument("--epochs", type=int, default=30)
    xs.add_argument("--batch", type=int, default=16)
    xs.add_argument("--close-mosaic", type=int, default=10)
    xs.add_argument("--width", type=int, default=640, help="exported input width")
    xs.add_argument("--height", type=int, default=384, help="exported input height")
    xs.add_argument("--yolo-config", type=Path, default=DEFAULT_YOLO_CONFIG)
    xs.set_defaults(func=cmd_cross_source)

    ex = tsub.add_parser("export", help="ONNX FP32 (rectangular input) + static INT8 (QDQ), both evaluated")
    ex.add_argument("--weights", type=Path, required=True, help="ultralytics .pt (e.g. RUN/weights/best.pt)")
    ex.add_argument("--data", type=Path, required=True, help="data.yaml: calibration (train) and evaluation (val)")
    ex.add_argument("--out", type=Path, required=True, help="writes OUT/fp32 and OUT/int8")
    ex.add_argument("--width", type=int, default=640)
    ex.add_argument("--height", type=int, default=384)
    ex.add_argument("--calibration", type=int, default=200, help="training images used to calibrate INT8")
    ex.add_argument("--no-int8", action="store_true")
    ex.add_argument("--yolo-config", type=Path, default=DEFAULT_YOLO_CONFIG)
    ex.set_defaults(func=cmd_export)

    reg = tsub.add_parser("register", help="copy an exported model into models/<name>/<version>/ (not activated)")
    reg.add_argument("exported", type=Path, help="an export folder (OUT/int8 or OUT/fp32)")
    reg.add_argument("--name", default="gridsight-detector")
    reg.add_argument("--version", required=True)
    reg.add_argument("--run", type=Path, help="training run folder: its command and best.pt travel with the model")
    reg.add_argument("--weights", type=Path, help="weights to keep beside the model (default: RUN/weights/best.pt)")
    reg.add_argument("--dataset", type=Path, help="dataset folder, for the dataset hash")
    reg.add_argument("--licences", type=Path, help="YAML list of the training data's licences")
    reg.add_argument("--models-dir", type=Path, default=Path("models"))
    reg.add_argument("--default", action="store_true", help="also make it the version a fresh install runs")
    reg.set_defaults(func=cmd_register)
