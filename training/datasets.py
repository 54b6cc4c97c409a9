"""Import labelled data (YOLO, COCO, Pascal VOC) into one GridSight training dataset.

A GridSight dataset is a YOLO folder — `images/<split>/`, `labels/<split>/`, `data.yaml` —
because that is what ultralytics trains on. Several sources merge into the same folder:
each import adds its images under a source prefix (no name clashes) and maps its class
names onto the dataset's class list through a mapping file. Nothing here needs torch.

Bad records never stop an import: a box outside the image, an unknown class id, a
missing image or a COCO annotation pointing at nothing is reported by file and line (or
annotation id) and skipped; the rest is imported. The report also counts images and
boxes per class and split, and images left without a box (kept: they are negatives).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.parsers import expat

import cv2
import yaml

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLITS = ("train", "val")
#: names that sources use for their validation split
_VAL_NAMES = {"val", "valid", "validation"}


class DatasetError(ValueError):
    """The dataset or mapping as a whole cannot be used (not a single bad record)."""


@dataclass(frozen=True)
class Box:
    """One labelled box: class name and normalised centre/size (YOLO convention)."""

    cls: str
    cx: float
    cy: float
    w: float
    h: float

    def yolo_line(self, class_id: int) -> str:
        return f"{class_id} {self.cx:.6f} {self.cy:.6f} {self.w:.6f} {self.h:.6f}"


@dataclass
class Sample:
    """One image and its boxes, as read from a source."""

    image: Path
    split: str  # "train" | "val" | "" (the source did not say)
    boxes: list[Box]


@dataclass
class ImportReport:
    images: Counter[str] = field(default_factory=Counter)  # split → images
    boxes: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))  # split → class → boxes
    empty: Counter[str] = field(default_factory=Counter)  # split → images without a box
    dropped: Counter[str] = field(default_factory=Counter)  # source class → boxes dropped by the mapping
    problems: list[str] = field(default_factory=list)  # "file:line: what" / "annotation 17: what"

    def problem(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def to_dict(self) -> dict:
        return {
            "images": dict(self.images),
            "boxes": {s: dict(c) for s, c in self.boxes.items()},
            "empty_images": dict(self.empty),
            "dropped_by_mapping": dict(self.dropped),
            "problems": self.problems,
        }

    def render(self) -> str:
        classes = sorted({c for counts in self.boxes.values() for c in counts})
        lines = [f"{'class':16}" + "".join(f"{s:>8}" for s in SPLITS)]
        lines += [f"{c:16}" + "".join(f"{self.boxes[s][c]:8d}" for s in SPLITS) for c in classes]
        lines.append(f"{'images':16}" + "".join(f"{self.images[s]:8d}" for s in SPLITS))
        lines.append(f"{'  without boxes':16}" + "".join(f"{self.empty[s]:8d}" for s in SPLITS))
        if self.dropped:
            lines.append("dropped by the class mapping: " + ", ".join(f"{c} ({n})" for c, n in self.dropped.items()))
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s), skipped:")
            lines += [f"  {p}" for p in self.problems[:50]]
            if len(self.problems) > 50:
                lines.append(f"  ... and {len(self.problems) - 50} more (see import_report.json)")
        return "\n".join(lines)


@dataclass(frozen=True)
class ClassMap:
    """Target class list plus source name → target name (None: drop that class's boxes)."""

    classes: list[str]
    rename: dict[str, str | None]

    @classmethod
    def load(cls, path: Path) -> ClassMap:
        """Reads `classes: [...]` and optional `map: {source: target|null}` from YAML.

        Raises:
            DatasetError: unreadable file, missing `classes`, or a map target not in `classes`.
        """
        try:
            raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as e:
            raise DatasetError(f"{path}: cannot read class mapping: {e}") from e
        classes = raw.get("classes")
        if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
            raise DatasetError(f"{path}: classes: expected a non-empty list of names")
        rename = raw.get("map") or {}
        if not isinstance(rename, dict):
            raise DatasetError(f"{path}: map: expected a mapping source name → target name or null")
        unknown = sorted({t for t in rename.values() if t is not None and t not in classes})
        if unknown:
            raise DatasetError(f"{path}: map: targets {unknown} are not in classes {classes}")
        return cls(list(classes), {str(k): v for k, v in rename.items()})

    def target(self, name: str) -> str | None:
        if name in self.rename:
            return self.rename[name]
        return name if name in self.classes else None


def _norm_split(name: str) -> str:
    return "val" if name.lower() in _VAL_NAMES else "train" if name.lower() == "train" else ""


def _image_size(path: Path) -> tuple[int, int] | None:
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if img is None else (img.shape[1], img.shape[0])


def _clip_box(cx: float, cy: float, w: float, h: float) -> tuple[float, float, float, float] | None:
    """Boxes that poke out of the image by rounding are clipped; ones outside it are rejected."""
    x1, y1, x2, y2 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0), min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)
    if x2 - x1 <= 1e-4 or y2 - y1 <= 1e-4:
        return None
    return (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1


def _outside(cx: float, cy: float, w: float, h: float, tol: float = 0.02) -> bool:
    return cx - w / 2 < -tol or cy - h / 2 < -tol or cx + w / 2 > 1 + tol or cy + h / 2 > 1 + tol or w <= 0 or h <= 0


# --- readers: one generator per source format -------------------------------------------


def _yolo_splits(root: Path) -> list[tuple[str, Path, Path]]:
    """(split name, images folder, labels folder): `images/<split>` + `labels/<split>`, or Roboflow's
    export layout `<split>/images` + `<split>/labels`."""
    if (root / "images").is_dir():
        return [
            (d.name, d, root / "labels" / d.name) for d in sorted(p for p in (root / "images").iterdir() if p.is_dir())
        ]
    return [(d.name, d / "images", d / "labels") for d in sorted(root.iterdir()) if (d / "images").is_dir()]


def read_yolo(root: Path, report: ImportReport) -> Iterator[Sample]:
    """`root/data.yaml` (names as list or dict) with `images/<split>` and `labels/<split>` (or `<split>/images`...)."""
    data_yaml = root / "data.yaml"
    try:
        meta = yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise DatasetError(f"{data_yaml}: cannot read: {e}") from e
    names = meta.get("names")
    if isinstance(names, list):
        names = dict(enumerate(names))
    if not isinstance(names, dict) or not names:
        raise DatasetError(f"{data_yaml}: names: expected a list or an id → name mapping")
    try:
        names = {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError) as e:
        raise DatasetError(f"{data_yaml}: names: class ids must be integers: {e}") from e
    splits = _yolo_splits(root)
    if not splits:
        raise DatasetError(f"{root / 'images'}: no images folder (nor <split>/images)")
    # Names like "x_jpg.rf.3fa9.jpg" hold dots: strip only the real suffix, never use with_suffix.
    label_roots = [root / "labels"] if (root / "images").is_dir() else [labels for _, _, labels in splits]
    label_files = {p.parent / p.stem for d in label_roots for p in d.rglob("*.txt")}
    seen: set[Path] = set()
    # A source without a validation split gets one from write_samples (split "").
    has_val = any(_norm_split(name) == "val" for name, _, _ in splits)
    for split_name, images, labels in splits:
        for image in sorted(p for p in images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            rel = image.relative_to(images).parent / image.stem
            label = labels / rel.parent / f"{rel.name}.txt"
            seen.add(label.parent / rel.name)
            boxes: list[Box] = []
            if label.exists():
                for n, line in enumerate(label.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                    if not line.strip():
                        continue
                    where = f"{label}:{n}"
                    parts = line.split()
                    try:
                        cid, values = int(parts[0]), [float(v) for v in parts[1:]]
                    except (ValueError, IndexError):
                        cid, values = -1, []
                    if len(values) > 4 and len(values) % 2 == 0:  # a segment (x1 y1 x2 y2 ...): its bounding box
                        xs, ys = values[0::2], values[1::2]
                        values = [
                            (min(xs) + max(xs)) / 2,
                            (min(ys) + max(ys)) / 2,
                            max(xs) - min(xs),
                            max(ys) - min(ys),
                        ]
                    if cid < 0 or len(values) != 4:
                        report.problem(where, f"not 'class cx cy w h' nor a segment: {line.strip()!r}")
                        continue
                    cx, cy, w, h = values
                    if cid not in names:
                        report.problem(where, f"unknown class id {cid} (known: {sorted(names)})")
                        continue
                    if _outside(cx, cy, w, h):
                        report.problem(where, f"box outside the image: {line.strip()!r}")
                        continue
                    clipped = _clip_box(cx, cy, w, h)
                    if clipped:
                        boxes.append(Box(names[cid], *clipped))
            yield Sample(image, _norm_split(split_name) if has_val else "", boxes)
    for rel in sorted(label_files - seen):
        report.problem(f"{rel}.txt", "label without an image")


def photo_of(image: Path) -> str:
    """The photo an exported image shows: Roboflow names each augmented copy `<photo>_<ext>.rf.<hash>`."""
    return image.stem.split(".rf.", 1)[0]


def one_per_photo(samples: Iterable[Sample], val_fraction: float) -> Iterator[Sample]:
    """One copy of each photo, split by photo. A Roboflow export holds up to three augmented copies
    of a training photo, and the same photo may sit in its train and its valid split: imported as
    they are, copies of one photo would be scored against themselves. The unaugmented copy (valid,
    test) is kept where there is one, and the photo decides the split, not the export."""
    best: dict[str, Sample] = {}
    for s in samples:
        kept = best.setdefault(photo_of(s.image), s)
        if kept.split == "train" and s.split != "train":
            best[photo_of(s.image)] = s
    for photo, s in sorted(best.items()):
        yield Sample(s.image, hash_split(photo, val_fraction), s.boxes)


def read_coco(annotations: Path, images_root: Path, report: ImportReport, split: str = "") -> Iterator[Sample]:
    """One COCO detection JSON; `images_root` holds the `file_name`s."""
    try:
        coco = json.loads(Path(annotations).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{annotations}: cannot read COCO JSON: {e}") from e
    if not isinstance(coco, dict):
        raise DatasetError(f"{annotations}: expected a COCO object with images, annotations and categories")
    cats: dict[object, str] = {}
    for i, c in enumerate(coco.get("categories") or []):
        if not isinstance(c, dict) or not _hashable(c.get("id")) or not c.get("name"):
            report.problem(f"{annotations}: categories[{i}]", "category without an id or a name")
        else:
            cats[c["id"]] = str(c["name"])
    images: dict[object, dict] = {}
    for i, im in enumerate(coco.get("images") or []):
        if not isinstance(im, dict) or not _hashable(im.get("id")) or not im.get("file_name"):
            report.problem(f"{annotations}: images[{i}]", "image without an id or a file_name")
        else:
            images[im["id"]] = im
    by_image: dict[object, list[dict]] = defaultdict(list)
    for i, ann in enumerate(coco.get("annotations") or []):
        if not isinstance(ann, dict):
            report.problem(f"{annotations}: annotations[{i}]", "not an object")
            continue
        where = f"{annotations}: annotation {ann.get('id', f'#{i}')}"
        iid, cid = ann.get("image_id"), ann.get("category_id")
        if not _hashable(iid) or iid not in images:
            report.problem(where, f"image_id {iid} is not in images")
        elif not _hashable(cid) or cid not in cats:
            report.problem(where, f"category_id {cid} is not in categories")
        else:
            by_image[iid].append(ann)
    for iid, im in images.items():
        path = images_root / im["file_name"]
        if not path.exists():
            report.problem(f"{annotations}: image {iid}", f"file not found: {path}")
            continue
        w, h = im.get("width"), im.get("height")
        if not isinstance(w, int | float) or not isinstance(h, int | float) or w <= 0 or h <= 0:
            w, h = _image_size(path) or (0, 0)
            if not w or not h:
                report.problem(f"{annotations}: image {iid}", f"cannot decode {path}")
                continue
        boxes = []
        for ann in by_image.get(iid, []):
            where = f"{annotations}: annotation {ann.get('id', '?')}"
            try:
                x, y, bw, bh = map(float, ann["bbox"])
            except (KeyError, TypeError, ValueError):
                report.problem(where, "bbox is not [x, y, w, h]")
                continue
            cx, cy, nw, nh = (x + bw / 2) / w, (y + bh / 2) / h, bw / w, bh / h
            clipped = None if _outside(cx, cy, nw, nh) else _clip_box(cx, cy, nw, nh)
            if clipped is None:
                report.problem(where, f"box outside the image: {ann['bbox']}")
                continue
            boxes.append(Box(cats[ann["category_id"]], *clipped))
        yield Sample(path, split, boxes)


def _hashable(v: object) -> bool:
    return isinstance(v, int | str) and not isinstance(v, bool)


def read_voc(root: Path, report: ImportReport) -> Iterator[Sample]:
    """Pascal VOC: `Annotations/*.xml`, `JPEGImages/`, optional `ImageSets/Main/{train,val}.txt`."""
    split_of: dict[str, str] = {}
    for name in ("train", "val"):
        listing = root / "ImageSets" / "Main" / f"{name}.txt"
        if listing.exists():
            split_of.update({s.split()[0]: name for s in listing.read_text().splitlines() if s.strip()})
    if not (root / "Annotations").is_dir():
        raise DatasetError(f"{root / 'Annotations'}: no Annotations folder")
    for xml_path in sorted((root / "Annotations").glob("*.xml")):
        try:
            data = xml_path.read_bytes()
            tree = ET.fromstring(data)  # noqa: S314 — local files the trainer chose
        except ET.ParseError as e:
            report.problem(f"{xml_path}:{e.position[0]}", f"not valid XML: {e}")
            continue
        except OSError as e:
            report.problem(str(xml_path), f"cannot read: {e}")
            continue
        filename = tree.findtext("filename") or f"{xml_path.stem}.jpg"
        image = root / "JPEGImages" / filename
        if not image.exists():
            report.problem(str(xml_path), f"image not found: {image}")
            continue
        try:
            w, h = float(tree.findtext("size/width")), float(tree.findtext("size/height"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            w, h = 0, 0
        if w <= 0 or h <= 0:  # some tools write <width>0</width>
            w, h = _image_size(image) or (0, 0)
            if not w or not h:
                report.problem(str(xml_path), f"cannot decode {image}")
                continue
        boxes = []
        lines = _object_lines(data)
        for i, obj in enumerate(tree.iter("object")):
            name = (obj.findtext("name") or "").strip()
            where = f"{xml_path}:{lines[i] if i < len(lines) else '?'}"
            if not name:
                report.problem(where, "object without a name")
                continue
            try:
                x1, y1, x2, y2 = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (TypeError, ValueError):
                report.problem(where, f"object {name!r} has no numeric bndbox")
                continue
            cx, cy, nw, nh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
            clipped = None if _outside(cx, cy, nw, nh) else _clip_box(cx, cy, nw, nh)
            if clipped is None:
                report.problem(where, f"object {name!r}: box outside the image")
                continue
            boxes.append(Box(name, *clipped))
        yield Sample(image, split_of.get(xml_path.stem, ""), boxes)


def _object_lines(data: bytes) -> list[int]:
    """Line of each `<object>` start tag in document order (ElementTree keeps no positions)."""
    lines: list[int] = []
    parser = expat.ParserCreate()

    def start(name: str, _attrs: dict) -> None:
        if name == "object":
            lines.append(parser.CurrentLineNumber)

    parser.StartElementHandler = start
    try:
        parser.Parse(data, True)
    except expat.ExpatError:
        pass  # ElementTree parsed it; positions are only a courtesy
    return lines


# --- writer ---------------------------------------------------------------------------------


def hash_split(key: str, val_fraction: float) -> str:
    """Deterministic split for sources without one (same key → same split, every run)."""
    h = int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") / 2**32  # noqa: S324 — not security
    return "val" if h < val_fraction else "train"


def write_samples(
    samples: Iterable[Sample],
    out: Path,
    class_map: ClassMap,
    *,
    prefix: str,
    report: ImportReport,
    val_fraction: float = 0.15,
) -> ImportReport:
    """Adds samples to the YOLO dataset at `out` (created or extended) and updates data.yaml.

    Raises:
        DatasetError: `out` already holds a dataset with a different class list.
    """
    out = Path(out)
    data_yaml = out / "data.yaml"
    if data_yaml.exists():
        existing = (yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}).get("names")
        if isinstance(existing, dict):
            existing = [existing[k] for k in sorted(existing)]
        if existing != class_map.classes:
            raise DatasetError(f"{data_yaml}: holds classes {existing}, the mapping says {class_map.classes}")
    ids = {c: i for i, c in enumerate(class_map.classes)}
    taken: dict[tuple[str, str], Path] = {}  # (split, output stem) → the source image that has it
    for s in samples:
        split = s.split or hash_split(f"{prefix}/{s.image.name}", val_fraction)
        stem = f"{prefix}__{s.image.stem}"
        if taken.setdefault((split, stem), s.image) != s.image:
            # Same name from another folder (COCO file_names like train/0001.jpg and val/0001.jpg,
            # nested YOLO folders) or another suffix: never overwrite an earlier image or its label.
            stem = f"{stem}__{hashlib.sha1(str(s.image).encode()).hexdigest()[:8]}"  # noqa: S324 — a name
            taken[(split, stem)] = s.image
        lines = []
        for b in s.boxes:
            target = class_map.target(b.cls)
            if target is None:
                report.dropped[b.cls] += 1
                continue
            lines.append(b.yolo_line(ids[target]))
            report.boxes[split][target] += 1
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s.image, out / "images" / split / f"{stem}{s.image.suffix.lower()}")
        (out / "labels" / split / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))
        report.images[split] += 1
        report.empty[split] += not lines
    meta = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "names": class_map.classes}
    data_yaml.write_text(yaml.safe_dump(meta, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _append_report(out, prefix, report)
    return report


def _append_report(out: Path, prefix: str, report: ImportReport) -> None:
    path = out / "import_report.json"
    reports = json.loads(path.read_text()) if path.exists() else {}
    reports[prefix] = report.to_dict()
    path.write_text(json.dumps(reports, indent=1, ensure_ascii=False))


def import_dataset(
    fmt: str,
    source: Path,
    out: Path,
    class_map: ClassMap,
    *,
    prefix: str | None = None,
    images_root: Path | None = None,
    val_fraction: float = 0.15,
    per_photo: bool = False,
) -> ImportReport:
    """Reads a YOLO folder, a COCO JSON (+ images_root) or a VOC folder into `out`
    (`per_photo`: one copy of each photo of an augmented export, see `one_per_photo`).

    Raises:
        DatasetError: the source as a whole is unreadable or the class lists disagree.
    """
    source = Path(source)
    report = ImportReport()
    if fmt == "yolo":
        samples = read_yolo(source, report)
    elif fmt == "coco":
        samples = read_coco(source, Path(images_root or source.parent), report)
    elif fmt == "voc":
        samples = read_voc(source, report)
    else:
        raise DatasetError(f"format: expected yolo, coco or voc (got {fmt!r})")
    if per_photo:
        samples = one_per_photo(samples, val_fraction)
    name = prefix or (source.stem if fmt == "coco" else source.name)
    return write_samples(samples, out, class_map, prefix=name, report=report, val_fraction=val_fraction)


def dataset_hash(root: Path) -> str:
    """sha256 over label files and image names: changes whenever the training data does."""
    h = hashlib.sha256()
    for p in sorted(Path(root).glob("labels/*/*.txt")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()
