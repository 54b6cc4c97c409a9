"""Operators' review verdicts → a labelled training dataset (`gridsight train dataset from-reviews`).

Every verdict is a label someone paid for:

* **confirmed** — the incident's box, with the detector class that found it when that class
  is one of the problem's outputs (the label `detector:garbage` of 06034 gives `garbage`),
  else the class the problem maps to (below): a detection of another class that happened to
  lie under the confirmed problem's box says nothing about the problem.
* **relabelled** — the corrected box (the original one when the operator did not draw one)
  with the class of the *corrected* problem: the analyzer label when the new problem still
  lists it among its outputs, else the class the new problem maps to (below).
* **rejected** — the image as a hard negative (an empty label file): nothing in it is any of
  the dataset's classes as far as this verdict knows.

Problems found by a model-free analyzer (`occupancy:stationary`, `text:ad`, `haze:dust`) have
no detector class of their own. Their class is, in this order: a `problem:<code>` entry of the
class-mapping file's `map` (`problem:09006: stall`), else the problem's only `detector:` output
in the taxonomy (09001 → cart). A problem mapped to `null`, one without any `detector:` output
(07001 small ads, 08004 dust) and a class the mapping drops or does not list are *foreign*: not
one of the dataset's classes. A problem with several detector outputs and no mapping (09006:
stall, umbrella or cart?) is *unknown*. Either way the incident's own image is skipped and
counted under `skipped` — never written without its box, which would teach the model that the
confirmed problem is background.

Other objects in the same frame count too: an image also gets the box of every confirmed or
relabelled incident of its camera that was in view when it was taken (city problems stand
still), and an image showing an object that cannot be labelled — an incident still pending or
filed without review, or an unknown one — is left out and counted (foreign ones do not
matter): as a negative, or with only its other boxes, it would teach the model that the
object is background.

Images are the incident's newest CLEAN evidence JPEG — the one the operator judged, without
the drawn boxes and caption. Identical images (same content hash: one frame behind several
incidents) are merged: the positives are united, and a rejection adds nothing to an image
that holds a confirmed box. Near-identical images of one camera (a 64-bit difference hash
within `near_bits` bits) with the same labels are kept once; ones whose labels differ carry
different information and are all kept.

Splits never cut through a camera's near-identical frames: images are grouped by camera and
time block (the local day by default, or the whole camera) and whole groups go to train or
val by a hash of the group key — the same group lands in the same split on every export, so
a growing dataset never moves old frames from val into train.

Running the export again replaces its previous output (files named `<prefix>__*`): a verdict
undone since then no longer leaves a stale label behind.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import yaml
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, selectinload

from detector.config import DEFAULT_TZ
from detector.rules.taxonomy import Taxonomy
from detector.store.db import Incident
from training.datasets import (
    SPLITS,
    Box,
    ClassMap,
    DatasetError,
    ImportReport,
    Sample,
    _clip_box,
    _outside,
    hash_split,
    write_samples,
)

VERDICTS = ("confirmed", "relabelled", "rejected")
DEFAULT_PREFIX = "reviews"
NEAR_BITS = 6  # of 64: JPEG noise and a passing cloud stay within this; a moved object does not
SAME_BOX_IOU = 0.7  # two incidents' boxes on one image this close are one object
BAD_BOX = "box outside the image"
SAME_LABEL_IOU = 0.5  # near-identical images whose boxes match this well carry the same labels


class ReviewExportError(DatasetError):
    """The export as a whole cannot run (no database, wrong class list); not a single bad incident."""


@dataclass
class ReviewReport(ImportReport):
    """The import report plus what happened to each verdict."""

    reviews: Counter[str] = field(default_factory=Counter)  # verdict → incidents read
    skipped: Counter[str] = field(default_factory=Counter)  # reason → incidents not exported
    identical_merged: int = 0  # incident images folded into another incident's identical image
    near_duplicates: int = 0  # near-identical images with the same labels, dropped
    groups: Counter[str] = field(default_factory=Counter)  # split → camera/time groups

    def to_dict(self) -> dict:
        return {
            **super().to_dict(),
            "reviews": dict(self.reviews),
            "skipped": dict(self.skipped),
            "identical_merged": self.identical_merged,
            "near_duplicates": self.near_duplicates,
            "groups": dict(self.groups),
        }

    def render(self) -> str:
        lines = ["verdicts read: " + ", ".join(f"{v} {self.reviews[v]}" for v in VERDICTS)]
        if self.skipped:
            lines.append("skipped (no image written):")
            lines += [f"  {n:5d}  {reason}" for reason, n in sorted(self.skipped.items())]
        lines.append(
            f"identical images merged: {self.identical_merged}; near-duplicates dropped: {self.near_duplicates}"
        )
        lines.append("camera/time groups: " + ", ".join(f"{s} {self.groups[s]}" for s in SPLITS))
        return "\n".join([*lines, super().render()])


@dataclass(frozen=True)
class Presence:
    """What one incident says about the frames its camera took while the problem was in view."""

    incident_id: int
    camera_id: str
    spans: tuple[tuple[datetime, datetime], ...]  # when it was in view (pipeline time)
    status: str  # label: a reviewed box of a listed class | foreign: none of the classes | unknown | rejected
    box: Box | None
    why: str = ""  # for foreign and unknown

    def present(self, t: datetime) -> bool:
        return any(a <= t <= b for a, b in self.spans)


@dataclass(frozen=True)
class Reviewed:
    """One incident's verdict as a training example: its image with every box known to be in it."""

    incident_id: int
    camera_id: str
    verdict: str  # confirmed | relabelled | rejected
    taken_at: datetime  # pipeline time of the frame behind the image
    image: Path
    sha256: str
    boxes: list[Box]  # empty: a hard negative


@dataclass
class ExportImage:
    """One distinct image to write: the incidents behind it, merged."""

    sha256: str
    image: Path
    camera_id: str
    taken_at: datetime
    boxes: list[Box]
    incidents: list[int]
    verdicts: list[str]
    group: str = ""
    split: str = ""


# --- labels from verdicts ------------------------------------------------------------------


def detector_class(problem_code: str, label: str | None, taxonomy: Taxonomy, class_map: ClassMap) -> str | None:
    """The detector class an incident's box shows, or None when it has none (see the module doc).

    Raises:
        KeyError: `problem_code` is not in the taxonomy.
    """
    problem = taxonomy[problem_code]
    if label and label.startswith("detector:") and label in problem.outputs:
        return label.split(":", 1)[1]
    key = f"problem:{problem_code}"
    if key in class_map.rename:
        return class_map.rename[key]
    detector = [o.split(":", 1)[1] for o in problem.outputs if o.startswith("detector:")]
    return detector[0] if len(detector) == 1 else None


def _box(xyxy: object, cls: str) -> Box | None:
    try:
        x0, y0, x1, y1 = (float(v) for v in xyxy)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    clipped = None if _outside(cx, cy, w, h) else _clip_box(cx, cy, w, h)
    return Box(cls, *clipped) if clipped else None


def _frame_time(inc: Incident) -> datetime:
    """When the newest clean image was taken: the last opening (a recurrence adds a fresh one)."""
    opened = [e.ts for e in inc.events if e.kind in ("opened", "recurred")]
    return max(opened) if opened else inc.opened_at


def _spans(inc: Incident) -> tuple[tuple[datetime, datetime], ...]:
    """The stretches of time the incident's problem was in view, from its opened/recurred/cleared events."""
    spans: list[tuple[datetime, datetime]] = []
    start: datetime | None = None
    for e in sorted(inc.events, key=lambda e: (e.ts, e.id)):
        if e.kind in ("opened", "recurred") and start is None:
            start = inc.first_seen_at if not spans and e.kind == "opened" else e.ts
        elif e.kind == "cleared" and start is not None:
            try:
                end = datetime.fromisoformat((e.details or {})["last_seen"])
            except (KeyError, TypeError, ValueError):
                end = e.ts
            spans.append((start, max(start, end)))
            start = None
    if start is not None:
        spans.append((start, max(start, inc.last_seen_at)))
    return tuple(spans) or ((inc.first_seen_at, inc.last_seen_at),)


def presence(inc: Incident, taxonomy: Taxonomy, class_map: ClassMap) -> Presence:
    """The incident's status as a label (see the module doc)."""

    def out(status: str, box: Box | None = None, why: str = "") -> Presence:
        return Presence(inc.id, inc.camera_id, _spans(inc), status, box, why)

    state, code = inc.review_state, inc.problem_code
    if state == "rejected":
        return out("rejected")
    label = (inc.details or {}).get("label")
    if code not in taxonomy:
        return out("unknown", why=f"problem {code} is not in the taxonomy")
    cls = detector_class(code, label, taxonomy, class_map)
    if cls is None:
        mapped_null = f"problem:{code}" in class_map.rename
        if mapped_null or not any(o.startswith("detector:") for o in taxonomy[code].outputs):
            return out("foreign", why=f"{code} ({label or 'no label'}): no detector class")
        return out(
            "unknown", why=f"{code} ({label or 'no label'}): no single detector class (map problem:{code} to one)"
        )
    if class_map.target(cls) is None:
        return out("foreign", why=f"class {cls}: dropped or not listed by the class mapping")
    if state not in ("confirmed", "relabelled"):
        return out("unknown", why=f"{cls}, not reviewed")
    box = _box(inc.box, cls)
    if box is None:
        return out("unknown", why=BAD_BOX)
    return out("label", box)


def read_reviews(
    s: Session,
    evidence_root: Path,
    taxonomy: Taxonomy,
    class_map: ClassMap,
    report: ReviewReport,
    *,
    since: datetime | None = None,
) -> list[Reviewed]:
    """Every reviewed incident that yields a training example, oldest first; the rest is counted.

    An image gets the boxes of every reviewed incident of its camera in view when it was taken
    (city problems stand still: a pile of garbage confirmed from 9:00 to 12:00 is in the 10:00
    frame of a rejected stall too). An image in which an object is in view that cannot be
    labelled — unreviewed, or of no single class — is left out: as a negative, or with only its
    other boxes, it would teach the model that the object is background.
    """
    root = Path(evidence_root).resolve()
    reviewed = [
        inc
        for inc in s.scalars(
            select(Incident)
            .where(Incident.review_state.in_(VERDICTS))
            .options(selectinload(Incident.evidence), selectinload(Incident.events))
            .order_by(Incident.id)
        )
        if since is None or _frame_time(inc) >= since
    ]
    if not reviewed:
        return []
    times = [_frame_time(inc) for inc in reviewed]
    others = s.scalars(
        select(Incident)
        .where(
            Incident.camera_id.in_({inc.camera_id for inc in reviewed}),
            Incident.first_seen_at <= max(times),
            Incident.last_seen_at >= min(times),
        )
        .options(selectinload(Incident.events))
    )
    in_view: dict[str, list[Presence]] = defaultdict(list)
    for inc in others:
        p = presence(inc, taxonomy, class_map)
        if p.status != "rejected":
            in_view[inc.camera_id].append(p)
    out: list[Reviewed] = []
    for inc, taken in zip(reviewed, times, strict=True):
        verdict = inc.review_state or ""
        report.reviews[verdict] += 1
        own = presence(inc, taxonomy, class_map)
        if own.status in ("foreign", "unknown"):
            report.skipped[own.why] += 1
            if own.why == BAD_BOX:
                report.problem(f"incident {inc.id}", f"box outside the image: {inc.box}")
            continue
        clean = [e for e in inc.evidence if e.kind == "clean"]
        if not clean:
            report.skipped["no clean evidence image (removed by retention?)"] += 1
            continue
        ev = max(clean, key=lambda e: e.id)
        path = (root / ev.path).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            report.problem(f"incident {inc.id}", f"evidence file missing: {root / ev.path}")
            continue
        seen = [p for p in in_view[inc.camera_id] if p.incident_id != inc.id and p.present(taken)]
        blocker = next((p for p in seen if p.status == "unknown"), None)
        if blocker is not None:
            report.skipped[f"another object in view cannot be labelled: {blocker.why}"] += 1
            continue
        boxes = [own.box] if own.box else []
        for p in seen:
            if p.status == "label" and p.box is not None and not _covered(p.box, boxes):
                boxes.append(p.box)
        out.append(Reviewed(inc.id, inc.camera_id, verdict, taken, path, ev.sha256, boxes))
    return out


# --- duplicates ----------------------------------------------------------------------------


def _iou(a: Box, b: Box) -> float:
    ax0, ay0, ax1, ay1 = a.cx - a.w / 2, a.cy - a.h / 2, a.cx + a.w / 2, a.cy + a.h / 2
    bx0, by0, bx1, by1 = b.cx - b.w / 2, b.cy - b.h / 2, b.cx + b.w / 2, b.cy + b.h / 2
    iw, ih = max(0.0, min(ax1, bx1) - max(ax0, bx0)), max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def _covered(box: Box, boxes: list[Box]) -> bool:
    """Another box of the same class already marks this object."""
    return any(b.cls == box.cls and _iou(b, box) >= SAME_BOX_IOU for b in boxes)


def _same_labels(a: list[Box], b: list[Box], iou: float = SAME_LABEL_IOU) -> bool:
    if len(a) != len(b):
        return False
    left = list(b)
    for box in a:
        match = next((o for o in left if o.cls == box.cls and _iou(o, box) >= iou), None)
        if match is None:
            return False
        left.remove(match)
    return True


def dhash(path: Path) -> int | None:
    """64-bit difference hash of the image (None: unreadable); near-identical frames differ in few bits."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if grey is None:
        return None
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def merge_identical(items: Iterable[Reviewed], report: ReviewReport) -> list[ExportImage]:
    """One image per content hash; positives united, a rejection only counts where nothing is confirmed."""
    by_sha: dict[str, ExportImage] = {}
    for r in items:
        img = by_sha.get(r.sha256)
        if img is None:
            img = by_sha[r.sha256] = ExportImage(r.sha256, r.image, r.camera_id, r.taken_at, [], [], [])
        else:
            report.identical_merged += 1
            img.taken_at = min(img.taken_at, r.taken_at)
        img.incidents.append(r.incident_id)
        img.verdicts.append(r.verdict)
        img.boxes += [b for b in r.boxes if not _covered(b, img.boxes)]
    return sorted(by_sha.values(), key=lambda i: (i.camera_id, i.taken_at, i.sha256))


def drop_near_duplicates(
    images: list[ExportImage], report: ReviewReport, near_bits: int = NEAR_BITS
) -> list[ExportImage]:
    """Keeps the first of each camera's near-identical images that carry the same labels."""
    kept: list[ExportImage] = []
    seen: dict[str, list[tuple[int, ExportImage]]] = defaultdict(list)
    for img in images:
        h = dhash(img.image)
        if h is None:
            report.problem(f"incident {img.incidents[0]}", f"cannot decode image {img.image}")
            continue
        twin = next(
            (
                k for kh, k in seen[img.camera_id]
                if (kh ^ h).bit_count() <= near_bits and _same_labels(k.boxes, img.boxes)
            ),
            None,
        )  # fmt: skip
        if twin is not None:
            report.near_duplicates += 1
            twin.incidents += img.incidents
            twin.verdicts += img.verdicts
            continue
        seen[img.camera_id].append((h, img))
        kept.append(img)
    return kept


# --- splits --------------------------------------------------------------------------------


def group_key(camera_id: str, taken_at: datetime, block_hours: float, tz: str = DEFAULT_TZ) -> str:
    """`camera|block start` in local time (block_hours 24 = the local day; 0 = the whole camera)."""
    if block_hours <= 0:
        return camera_id
    local = taken_at.astimezone(ZoneInfo(tz)).replace(tzinfo=None)
    step = timedelta(hours=block_hours)
    start = datetime(2000, 1, 1) + ((local - datetime(2000, 1, 1)) // step) * step
    return f"{camera_id}|{start:%Y-%m-%dT%H:%M}"


def _unit_hash(key: str) -> float:
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") / 2**32  # noqa: S324 — not security


def assign_splits(groups: Iterable[str], val_fraction: float) -> dict[str, str]:
    """Whole groups to train or val, by a hash of the key (stable as data grows).

    With two groups or more and 0 < val_fraction < 1, neither split stays empty: the group
    hashed lowest goes to val (or the highest to train) when the hash put all on one side.
    """
    keys = sorted(set(groups))
    split = {k: hash_split(k, val_fraction) for k in keys}
    if len(keys) >= 2 and 0 < val_fraction < 1:
        if all(s == "train" for s in split.values()):
            split[min(keys, key=_unit_hash)] = "val"
        elif all(s == "val" for s in split.values()):
            split[max(keys, key=_unit_hash)] = "train"
    return split


# --- export --------------------------------------------------------------------------------


def _check_classes(out: Path, class_map: ClassMap) -> None:
    data_yaml = out / "data.yaml"
    if not data_yaml.exists():
        return
    existing = (yaml.safe_load(data_yaml.read_text(encoding="utf-8")) or {}).get("names")
    if isinstance(existing, dict):
        existing = [existing[k] for k in sorted(existing)]
    if existing != class_map.classes:
        raise ReviewExportError(f"{data_yaml}: holds classes {existing}, the mapping says {class_map.classes}")


def _clear_previous(out: Path, prefix: str) -> None:
    for kind in ("images", "labels"):
        for split in SPLITS:
            for p in (out / kind / split).glob(f"{prefix}__*"):
                p.unlink()


def export_reviews(
    s: Session,
    evidence_root: Path,
    taxonomy: Taxonomy,
    out: Path,
    class_map: ClassMap,
    *,
    val_fraction: float = 0.2,
    since: datetime | None = None,
    block_hours: float = 24,
    near_bits: int = NEAR_BITS,
    prefix: str = DEFAULT_PREFIX,
) -> ReviewReport:
    """Writes the reviewed incidents as a YOLO dataset at `out` (created, or extended by this source).

    Also writes `<prefix>_index.json`: per image its split, camera/time group, incidents and
    verdicts (what each training image came from).

    Raises:
        ReviewExportError: `out` holds a dataset with another class list, or a bad prefix or val_fraction.
    """
    out = Path(out)
    if not re.fullmatch(r"[A-Za-z0-9_\-]{1,40}", prefix):
        raise ReviewExportError(f"prefix: letters, digits, _ and - only (got {prefix!r})")
    if not 0 <= val_fraction <= 1:
        raise ReviewExportError(f"val_fraction: expected 0..1 (got {val_fraction})")
    _check_classes(out, class_map)
    report = ReviewReport()
    items = read_reviews(s, evidence_root, taxonomy, class_map, report, since=since)
    images = drop_near_duplicates(merge_identical(items, report), report, near_bits)
    for img in images:
        img.group = group_key(img.camera_id, img.taken_at, block_hours)
    split_of = assign_splits((i.group for i in images), val_fraction)
    for img in images:
        img.split = split_of[img.group]
    report.groups.update(split_of.values())
    _clear_previous(out, prefix)
    samples = [Sample(i.image, i.split, i.boxes) for i in images]
    write_samples(samples, out, class_map, prefix=prefix, report=report, val_fraction=val_fraction)
    index = [
        {
            "image": f"images/{i.split}/{prefix}__{i.image.stem}{i.image.suffix.lower()}",
            "split": i.split,
            "group": i.group,
            "camera": i.camera_id,
            "taken_at": i.taken_at.isoformat(),
            "incidents": i.incidents,
            "verdicts": i.verdicts,
            "boxes": len(i.boxes),
        }
        for i in images
    ]
    (out / f"{prefix}_index.json").write_text(json.dumps({"images": index}, indent=1, ensure_ascii=False))
    return report


def parse_since(text: str, tz: str = DEFAULT_TZ) -> datetime:
    """`2026-03-01` (local midnight) or an ISO datetime (local when it names no zone).

    Raises:
        ValueError: neither.
    """
    try:
        return datetime.combine(date.fromisoformat(text), time(0), ZoneInfo(tz))
    except ValueError:
        pass
    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=ZoneInfo(tz))


def export_from_config(
    config_dir: Path,
    out: Path,
    classes: Path,
    *,
    val_fraction: float = 0.2,
    since: datetime | None = None,
    block_hours: float = 24,
    prefix: str = DEFAULT_PREFIX,
) -> ReviewReport:
    """`export_reviews` on the database, evidence root and taxonomy of a configuration directory.

    Raises:
        ReviewExportError: unusable settings or taxonomy, no database, or a class-list clash.
        DatasetError: an unreadable class mapping.
    """
    from detector.config import SETTINGS_FILE, load_config
    from detector.store.db import make_engine, session_factory

    class_map = ClassMap.load(classes)
    loaded = load_config(Path(config_dir))
    fatal = [e for e in loaded.errors if e.field == "taxonomy" or Path(e.file).name == SETTINGS_FILE]
    if fatal:
        raise ReviewExportError("; ".join(str(e) for e in fatal))
    url = loaded.settings.database_url
    if url.startswith("sqlite:///") and ":memory:" not in url and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ReviewExportError(f"no database at {url.removeprefix('sqlite:///')} (settings database_url)")
    engine = make_engine(url)  # read only: never migrates the runtime's database
    try:
        if not inspect(engine).has_table("incidents"):
            raise ReviewExportError(f"{url}: no incidents table (has GridSight ever run on it?)")
        with session_factory(engine)() as s:
            return export_reviews(
                s, loaded.settings.evidence_root, loaded.taxonomy, out, class_map, val_fraction=val_fraction,
                since=since, block_hours=block_hours, prefix=prefix,
            )  # fmt: skip
    finally:
        engine.dispose()
