"""Evidence files: content-addressed storage, annotation, retention and orphan sweeping.

Files are written (temp file, fsync, rename) *before* the database row that
points at them commits; a crash in between leaves a file without a row,
which `sweep_orphans` removes at the next start. So: never a row without its
file, and no orphan older than GRACE_S survives a restart.

A name is its content, so two writers can hold the same file: another camera
that decoded the same frame, or another instance on the same storage that took
a camera over. Whoever deletes an unreferenced file therefore spares one put or
re-used in the last GRACE_S: its row may not have committed yet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import supervision as sv
from numpy.typing import NDArray
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from detector.incidents import captions
from detector.store.db import CameraRow, Candidate, EvidenceFile, Incident, VerificationFile

log = logging.getLogger(__name__)

JPEG_QUALITY = 90
# The longest a file may wait for the row that names it: an opening waits up to a minute for its clip
# (manager.CLIP_WAIT_S); the rest is room for a loaded machine.
GRACE_S = 300.0


@dataclass(frozen=True, slots=True)
class StoredFile:
    kind: str
    path: str  # relative to the evidence root
    sha256: str
    bytes: int


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.tmp = root / "tmp"
        self.tmp.mkdir(exist_ok=True)

    def _final(self, digest: str, suffix: str) -> Path:
        return self.root / digest[:2] / f"{digest}{suffix}"

    def put_bytes(self, kind: str, data: bytes, suffix: str) -> StoredFile:
        digest = hashlib.sha256(data).hexdigest()
        final = self._final(digest, suffix)
        if final.exists():
            os.utime(final)  # a new reference is coming: not an orphan for GRACE_S
        else:
            fd, tmp = tempfile.mkstemp(dir=self.tmp, suffix=suffix)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; the API and backups read these
            final.parent.mkdir(exist_ok=True)
            os.replace(tmp, final)
        return StoredFile(kind, str(final.relative_to(self.root)), digest, len(data))

    def put_file(self, kind: str, src: Path) -> StoredFile:
        """Moves a finished file (e.g. a clip written in tmp/) to its content-hash name."""
        h = hashlib.sha256()
        with src.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
            os.fsync(f.fileno())
        digest = h.hexdigest()
        final = self._final(digest, src.suffix)
        final.parent.mkdir(exist_ok=True)
        size = src.stat().st_size
        os.chmod(src, 0o644)
        os.replace(src, final)
        return StoredFile(kind, str(final.relative_to(self.root)), digest, size)

    def put_jpeg(self, kind: str, image: NDArray[np.uint8]) -> StoredFile:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError("JPEG encoding failed")
        return self.put_bytes(kind, buf.tobytes(), ".jpg")

    def stored(self, kind: str, rel: str) -> StoredFile:
        """A file put here earlier, by its relative path (its name is its SHA-256).

        Raises:
            FileNotFoundError: the file is gone.
        """
        path = self.resolve(rel)
        os.utime(path)  # a new reference is coming: not an orphan for GRACE_S
        return StoredFile(kind, rel, path.stem, path.stat().st_size)

    def new_tmp_path(self, suffix: str) -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp, suffix=suffix)
        os.close(fd)
        return Path(name)

    def resolve(self, rel: str) -> Path:
        """The absolute path of a stored file; refuses paths that leave the root.

        Raises:
            ValueError: `rel` escapes the evidence root.
        """
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"evidence path {rel!r} is outside the evidence root")
        return path

    def unlink_unused(self, paths: set[str], used: set[str]) -> set[str]:
        """Deletes those of `paths` not in `used`; returns the ones spared because they are younger than GRACE_S."""
        spared = set()
        for rel in paths - used:
            path = self.resolve(rel)
            if self._young(path):
                spared.add(rel)
            else:
                path.unlink(missing_ok=True)
        return spared

    def past_grace(self, paths: set[str]) -> set[str]:
        """Those of `paths` older than GRACE_S (or gone)."""
        return {rel for rel in paths if not self._young(self.resolve(rel))}

    def _young(self, path: Path) -> bool:
        try:
            return time.time() - path.stat().st_mtime < GRACE_S
        except FileNotFoundError:
            return False

    def sweep_orphans(self, session: Session) -> int:
        """Deletes files no row refers to (evidence, a first sighting, a 核实 answer) and temp files; run at start."""
        known = set(session.scalars(select(EvidenceFile.path)))
        known |= set(session.scalars(select(Candidate.first_frame).where(Candidate.first_frame.is_not(None))))
        known |= set(session.scalars(select(VerificationFile.path)))  # 核实 answers' pictures
        removed = 0
        for p in self.root.glob("*/*"):  # tmp/ included: clips being written are young
            if p.is_file() and str(p.relative_to(self.root)) not in known and not self._young(p):
                p.unlink(missing_ok=True)
                removed += 1
        if removed:
            log.info("removed orphan evidence files", extra={"count": removed})
        return removed

    def apply_retention(self, session: Session, now: datetime, days: float) -> int:
        """Deletes evidence of incidents cleared more than `days` ago: rows first, then files.

        Ago on the camera's own clock (incidents carry its time): a video file's clock may stand
        months before `now`, and its incidents cleared a minute ago are not old. `now`: for a
        camera that has no clock yet.
        """
        span = timedelta(days=days)
        clocks = dict(session.execute(select(CameraRow.id, CameraRow.last_frame_at)).all())
        cameras = session.scalars(select(Incident.camera_id).where(Incident.state == "cleared").distinct()).all()
        if not cameras:
            return 0
        past = [and_(Incident.camera_id == c, Incident.cleared_at < (clocks.get(c) or now) - span) for c in cameras]
        old = select(Incident.id).where(Incident.state == "cleared", or_(*past))
        rows = session.scalars(select(EvidenceFile).where(EvidenceFile.incident_id.in_(old))).all()
        paths = {r.path for r in rows}
        session.execute(delete(EvidenceFile).where(EvidenceFile.id.in_([r.id for r in rows])))
        session.commit()
        still_used = set(session.scalars(select(EvidenceFile.path).where(EvidenceFile.path.in_(paths))))
        still_used |= set(session.scalars(select(Candidate.first_frame).where(Candidate.first_frame.in_(paths))))
        still_used |= set(session.scalars(select(VerificationFile.path).where(VerificationFile.path.in_(paths))))
        self.unlink_unused(paths, still_used)  # the same bytes may back another incident's evidence
        return len(rows)


def annotate(
    image: NDArray[np.uint8],
    boxes: list[tuple[float, float, float, float]],
    labels: list[str],
    zone: list[tuple[float, float]] | None,
    caption: str,
    *,
    ascii_labels: list[str] | None = None,
    ascii_caption: str | None = None,
) -> NDArray[np.uint8]:
    """The annotated evidence picture: zone outline, boxes with labels, a caption bar.

    Text is drawn in a CJK font; without one, `ascii_labels`/`ascii_caption` (when given) are
    drawn with OpenCV instead, which knows no Chinese.
    """
    h, w = image.shape[:2]
    scene = image.copy()
    if zone:
        poly = np.round(np.asarray(zone) * [w - 1, h - 1]).astype(int)
        scene = sv.draw_polygon(scene, poly, color=sv.Color.from_hex("#00c8ff"), thickness=max(2, w // 640))
    bar = max(24, h // 24)
    cjk = captions.cjk_font() is not None
    if boxes:
        dets = sv.Detections(xyxy=np.asarray(boxes, np.float32) * [w, h, w, h], class_id=np.arange(len(boxes)))
        scale = max(0.5, w / 1280)
        scene = sv.BoxAnnotator(color=sv.Color.RED, thickness=max(2, w // 400)).annotate(scene, dets)
        if cjk:
            size = max(12, round(20 * scale))
            for (x0, y0, _, _), text in zip(dets.xyxy, labels, strict=True):
                top = int(y0) - size - 6 if y0 - size - 6 >= bar else int(y0) + 3  # above the box, or inside it
                scene = captions.draw_text(scene, text, (int(x0) + 3, top), size, (255, 255, 255), (0, 0, 255), 3)
        else:
            scene = sv.LabelAnnotator(
                color=sv.Color.RED, text_scale=0.6 * scale, text_thickness=max(1, round(scale))
            ).annotate(scene, dets, labels=ascii_labels or labels)
    cv2.rectangle(scene, (0, 0), (w, bar), (0, 0, 0), -1)
    if cjk:
        size = captions.fit_size(caption, w - 16, round(bar * 0.7))
        scene = captions.draw_text(scene, caption, (8, max(0, (bar - size) // 2 - 1)), size, (255, 255, 255))
    else:
        cv2.putText(
            scene, ascii_caption or caption, (8, int(bar * 0.72)), cv2.FONT_HERSHEY_SIMPLEX, bar / 40,
            (255, 255, 255), 1, cv2.LINE_AA,
        )  # fmt: skip
    return scene
