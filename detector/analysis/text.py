"""Text on walls and poles: new posters (small illegal ads, 非法小广告) and their phone numbers.

Small ads are static and slow: a sheet is pasted at night and stays for days.
So this analyzer runs at a slow cadence of frame time (`every_s`, a minute by
default, or at once when `request()`ed) and only on the camera's `wall` and
`pole` zones:

1. each zone's bounding crop (outside the polygon masked out) is upscaled so
   that the smallest characters to read (`min_char_px`, 9 px at 1080p) reach
   the size the detector needs (`det_char_px`), and cut into tiles;
2. PP-OCR's text detector (RapidOCR's ONNX models, shipped inside the
   `rapidocr` package, run offline) finds text lines in every tile; lines cut
   by a tile border are joined again;
3. every line is warped straight out of the *original* crop to the
   recogniser's input height (one interpolation, no double resampling) and
   read by PP-OCR's recogniser, in batches;
4. lines are compared with the view's **baseline of permanent text** — shop
   signs, street names: text seen in most of the first `baseline_analyses`
   analyses, or seen for longer than `baseline_hours` — and only new text is
   kept;
5. new lines are grouped into posters (lines close to each other, gaps in
   units of their height), reported as "text:ad" with extras
   ``{"text": ..., "phones": [...]}`` (phones from `detector.analysis.phones`, voted
   over the analyses that read the same line) and a score from the OCR
   confidence.

The baseline and the lines being followed survive restarts (`state()`).
"""

from __future__ import annotations

import difflib
import json
import math
import threading
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from detector.analysis.base import Analyzer
from detector.analysis.phones import find_phones
from detector.types import Frame, Observations

#: a polygon in normalised frame coordinates, [(x, y), ...]
Polygon = Sequence[tuple[float, float]]

LABEL = "text:ad"
_STATE_MAGIC = b"GSTEXT1\n"  # never a zip or .npy header: other analyzers' load_state ignore it

Quad = NDArray[np.float32]  # (4, 2): top-left, top-right, bottom-right, bottom-left


@dataclass(frozen=True, slots=True)
class TextParams:
    """Tuning of `TextDetector`; pixel sizes are in pixels of the analysed frame."""

    #: seconds of frame time between analyses (a poster stays for days)
    every_s: float = 60.0
    #: height of the smallest characters to read, px (small ads at 1080p: 9-18 px)
    min_char_px: float = 9.0
    #: character height the text detector is fed, px: crops are upscaled by det_char_px / min_char_px
    det_char_px: float = 14.0
    #: largest upscaling (a low-resolution sub-stream cannot be read by upscaling it more)
    max_scale: float = 3.0
    #: largest tile side fed to the detector, px after upscaling (bounds memory and latency)
    tile_px: int = 1600
    #: overlap of neighbouring tiles, px after upscaling; lines cut by a border are joined again
    tile_overlap_px: int = 96
    #: recogniser input height, px (PP-OCR: 48)
    rec_height_px: int = 48
    #: detector thresholds (PP-OCR DB post-processing): pixel probability, box mean probability
    det_thresh: float = 0.3
    det_box_thresh: float = 0.5
    #: minimum recogniser confidence of a line
    min_line_score: float = 0.5
    #: characters smaller than this (px, measured on the line's ink) are too small for digits to be
    #: trusted: such lines count as text, but no phone number is taken from them
    min_phone_char_px: float = 7.0
    #: minimum characters (spaces excluded) in a line, and in a poster
    min_line_chars: int = 2
    min_poster_chars: int = 4
    #: analyses that learn the baseline at start: nothing is reported during them
    baseline_analyses: int = 3
    #: a line seen in at least this many of those analyses is permanent text
    baseline_min_hits: int = 2
    #: new text still there after this long joins the baseline (a new shop sign), hours
    baseline_hours: float = 72.0
    #: permanent text unseen this long is forgotten, hours
    forget_hours: float = 30 * 24.0
    #: a new line unseen this long is no longer followed, seconds (at least 5 analyses)
    track_forget_s: float = 3600.0
    #: lines of one poster: gaps at most this many line heights (vertical, horizontal)
    group_gap_y: float = 1.3
    group_gap_x: float = 0.6
    #: a line matches known text when this fraction of it lies on the known box ...
    match_overlap: float = 0.6
    #: ... and the texts are at least this similar (0..1)
    match_similarity: float = 0.5
    #: most entries kept in the state (baseline + followed lines)
    max_entries: int = 2000


# ------------------------------------------------------------------ OCR engine


class OcrEngine(Protocol):
    """Text detection and recognition; shared by all cameras, so thread-safe."""

    def detect(self, image: NDArray[np.uint8], thresh: float, box_thresh: float) -> list[tuple[Quad, float]]:
        """Text line quads (px of `image`) with their detection scores."""
        ...

    def recognize(self, crops: list[NDArray[np.uint8]]) -> list[tuple[str, float]]:
        """(text, confidence) of each straightened line crop (BGR)."""
        ...


class RapidOcrEngine:
    """PP-OCR (det + rec, ONNX) through RapidOCR, from the models inside the `rapidocr` package.

    The model files are given by path, so RapidOCR never tries to download
    anything: a missing model is an error at construction.
    """

    DET_MODEL = "PP-OCRv6_det_small.onnx"
    REC_MODEL = "PP-OCRv6_rec_small.onnx"

    def __init__(self, *, intra_op_num_threads: int = 1) -> None:
        import rapidocr  # heavy: only cameras watching walls need it
        from rapidocr import RapidOCR

        models = Path(rapidocr.__file__).resolve().parent / "models"
        det, rec = models / self.DET_MODEL, models / self.REC_MODEL
        for p in (det, rec):
            if not p.is_file():
                raise FileNotFoundError(f"RapidOCR model missing: {p} (rapidocr>=3.10 ships it)")
        threads = max(1, int(intra_op_num_threads))
        self._ocr = RapidOCR(
            params={
                "Global.log_level": "error",
                "Global.use_cls": False,
                "Det.model_path": str(det),
                "Det.limit_type": "max",
                "Det.limit_side_len": 8192,  # never resized: the analyzer sizes its tiles itself
                "Rec.model_path": str(rec),
                "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )
        self._det = self._ocr._load_det_model()
        self._rec = self._ocr._load_rec_model()
        self._lock = threading.Lock()  # the det post-processor is reconfigured per call
        from rapidocr.ch_ppocr_rec import TextRecInput

        self._rec_input = TextRecInput

    def detect(self, image: NDArray[np.uint8], thresh: float, box_thresh: float) -> list[tuple[Quad, float]]:
        with self._lock:
            self._det.postprocess_op.thresh = thresh
            self._det.postprocess_op.box_thresh = box_thresh
            res = self._det(image)
        if res.boxes is None or len(res.boxes) == 0:
            return []
        return [(np.asarray(b, np.float32).reshape(4, 2), float(s)) for b, s in zip(res.boxes, res.scores, strict=True)]

    def recognize(self, crops: list[NDArray[np.uint8]]) -> list[tuple[str, float]]:
        if not crops:
            return []
        res = self._rec(self._rec_input(img=list(crops)))
        return [(str(t), float(s)) for t, s in zip(res.txts, res.scores, strict=True)]


@lru_cache(maxsize=4)
def shared_engine(intra_op_num_threads: int = 1) -> RapidOcrEngine:
    """One engine per thread setting for the whole process (the sessions are the expensive part)."""
    return RapidOcrEngine(intra_op_num_threads=intra_op_num_threads)


# ------------------------------------------------------------------ the analyzer


@dataclass(slots=True)
class _Line:
    """One read text line of the current frame."""

    xyxy: tuple[float, float, float, float]  # normalised
    text: str
    score: float  # recogniser confidence
    char_px: float  # height of its characters, px of the frame (ink rows of the straightened line)


@dataclass(slots=True)
class _Entry:
    """Known text: permanent (baseline) or new and followed. Times are epoch seconds of frame time."""

    xyxy: list[float]
    text: str
    score: float
    first: float
    last: float
    hits: int = 1
    permanent: bool = False
    phones: dict[str, int] = field(default_factory=dict)


class TextDetector(Analyzer):
    """Finds new posters ("text:ad") on the `wall`/`pole` zones of one camera view.

    `zones` are the normalised polygons to read. `engine` defaults to the
    process-wide RapidOCR engine (loaded on first use).
    """

    name = "text"
    gated = True  # an unchanged scene has no new poster: its last observations stand

    def __init__(
        self,
        zones: Sequence[Polygon],
        params: TextParams | None = None,
        engine: OcrEngine | None = None,
        *,
        intra_op_num_threads: int = 1,
    ) -> None:
        self.params = params or TextParams()
        self._polygons = [np.asarray(p, np.float32).reshape(-1, 2) for p in zones if len(p) >= 3]
        self._engine = engine
        self._threads = intra_op_num_threads
        self._entries: list[_Entry] = []
        self._analyses = 0  # analyses run (warm-up counts them)
        self._last_run: float | None = None
        self._forced = False
        self._last_obs = Observations()
        self._aspect = 16 / 9  # frame width / height, for gaps in x
        self._tz: Any = None

    # ------------------------------------------------------------------ API

    @property
    def engine(self) -> OcrEngine:
        if self._engine is None:
            self._engine = shared_engine(self._threads)
        return self._engine

    @property
    def learning(self) -> bool:
        """True while the baseline of permanent text is being learned (nothing is reported)."""
        return self._analyses < self.params.baseline_analyses

    def request(self) -> None:
        """Analyse the next frame offered, whatever the cadence."""
        self._forced = True

    def analyze(self, frame: Frame) -> Observations:
        now = frame.ts.timestamp()
        due = self._forced or self._last_run is None or now - self._last_run >= self.params.every_s
        if self._last_run is not None and now < self._last_run:  # the clock went back (a looped file)
            due = True
        if not due or not self._polygons:
            return self._last_obs
        self._forced = False
        self._last_run = now
        h, w = frame.image.shape[:2]
        self._aspect, self._tz = w / h, frame.ts.tzinfo
        lines = self.read(frame.image)
        new = self._update(lines, now)
        self._analyses += 1
        self._last_obs = new if self._analyses > self.params.baseline_analyses else Observations()
        return self._last_obs

    def read(self, image: NDArray[np.uint8]) -> list[_Line]:
        """All text lines read in the zones of `image` (no baseline involved)."""
        h, w = image.shape[:2]
        out: list[_Line] = []
        for poly in self._polygons:
            out.extend(self._read_zone(image, poly * np.float32([w, h])))
        return _dedupe(out)

    def state(self) -> bytes | None:
        """The baseline and the followed lines (JSON, compressed)."""
        if not self._entries and self._analyses == 0:
            return None
        doc = {
            "analyses": self._analyses,
            "entries": [asdict(e) for e in self._entries],
        }
        return _STATE_MAGIC + zlib.compress(json.dumps(doc, ensure_ascii=False).encode())

    def load_state(self, blob: bytes) -> None:
        """Restores `state()`; a blob of another analyzer or a corrupt one is ignored."""
        if not blob.startswith(_STATE_MAGIC):
            return
        try:
            doc = json.loads(zlib.decompress(blob[len(_STATE_MAGIC) :]))
            entries = [_Entry(**e) for e in doc["entries"]]
            analyses = int(doc["analyses"])
        except (zlib.error, ValueError, TypeError, KeyError):
            return
        self._entries = entries
        self._analyses = analyses
        self._last_run = None
        self._last_obs = Observations()

    # ------------------------------------------------------------ reading

    def _read_zone(self, image: NDArray[np.uint8], poly_px: NDArray[np.float32]) -> list[_Line]:
        p = self.params
        h, w = image.shape[:2]
        x0, y0 = (int(v) for v in np.floor(np.maximum(poly_px.min(axis=0), 0)))
        x1, y1 = (int(v) for v in np.ceil(np.minimum(poly_px.max(axis=0), [w, h])))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        crop = image[y0:y1, x0:x1].copy()
        local = poly_px - np.float32([x0, y0])
        inside = np.zeros(crop.shape[:2], np.uint8)
        cv2.fillPoly(inside, [np.round(local).astype(np.int32)], 1)
        if not inside.all():  # blank out what is not the zone: text there is not read
            fill = np.median(crop[inside.astype(bool)], axis=0) if inside.any() else 128
            crop[inside == 0] = fill
        scale = float(np.clip(p.det_char_px / p.min_char_px, 1.0, p.max_scale))
        up = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) if scale > 1 else crop
        quads: list[tuple[Quad, int]] = []  # in px of the crop, with the tile they came from
        for ti, (tx, ty, tile) in enumerate(_tiles(up, p.tile_px, p.tile_overlap_px)):
            for q, _ in self.engine.detect(tile, p.det_thresh, p.det_box_thresh):
                quads.append(((q + np.float32([tx, ty])) / scale, ti))
        merged = _join_lines(quads)
        if not merged:
            return []
        crops, keep = [], []
        for q in merged:
            c = _straighten(crop, q, p.rec_height_px)
            if c is not None:
                crops.append(c)
                keep.append(q)
        out = []
        for q, c, (text, score) in zip(keep, crops, self.engine.recognize(crops), strict=True):
            text = " ".join(unicodedata.normalize("NFKC", text).split())
            if score < p.min_line_score or len(text.replace(" ", "")) < p.min_line_chars:
                continue
            cx, cy = q.mean(axis=0)
            if not inside[int(np.clip(cy, 0, inside.shape[0] - 1)), int(np.clip(cx, 0, inside.shape[1] - 1))]:
                continue
            qa = q + np.float32([x0, y0])
            bx0, by0 = qa.min(axis=0)
            bx1, by1 = qa.max(axis=0)
            out.append(
                _Line(
                    (float(bx0 / w), float(by0 / h), float(bx1 / w), float(by1 / h)),
                    text,
                    float(score),
                    float(_ink_height(c) * _short_side(q)),
                )
            )
        return out

    # ------------------------------------------------------------ baseline

    def _update(self, lines: list[_Line], now: float) -> Observations:
        """Matches lines with the known text, learns, and returns the new text grouped into posters."""
        p = self.params
        learning = self.learning
        new: list[tuple[_Line, list[str], _Entry]] = []
        seen: set[int] = set()
        permanent = [e for e in self._entries if e.permanent]
        followed = [e for e in self._entries if not e.permanent]
        for line in lines:
            matched = _match(line, permanent, p)
            if matched:
                for e in matched:
                    e.last = now
                    seen.add(id(e))
                continue
            hits = [e for e in _match(line, followed, p) if id(e) not in seen]
            if hits:
                e = max(hits, key=lambda e: _overlap(line.xyxy, e.xyxy))
                if now > e.last:
                    e.hits += 1
                e.last = now
                if line.score >= e.score:
                    e.xyxy, e.text, e.score = list(line.xyxy), line.text, line.score
            else:
                e = _Entry(list(line.xyxy), line.text, line.score, now, now)
                self._entries.append(e)
                followed.append(e)
            seen.add(id(e))
            phones = find_phones(line.text) if line.char_px >= p.min_phone_char_px else []
            for ph in phones:
                e.phones[ph] = e.phones.get(ph, 0) + 1
            if not phones and line.char_px >= p.min_phone_char_px:
                phones = _voted(e.phones)  # misread this time: what earlier analyses of this line agreed on
            new.append((line, phones, e))

        if learning and self._analyses + 1 >= p.baseline_analyses:  # the end of the warm-up
            for e in self._entries:
                if not e.permanent and e.hits >= min(p.baseline_min_hits, p.baseline_analyses):
                    e.permanent = True
        for e in self._entries:  # new text that stayed long enough is part of the view
            if not e.permanent and e.hits >= 3 and e.last - e.first >= p.baseline_hours * 3600:
                e.permanent = True
        self._forget(now)
        fresh = [(ln, ph, e) for ln, ph, e in new if not e.permanent]
        return self._posters(fresh)

    def _forget(self, now: float) -> None:
        p = self.params
        track_s = max(p.track_forget_s, 5 * p.every_s)
        keep = []
        for e in self._entries:
            age = now - e.last
            if age < 0:  # the clock went back: keep, and restart the count
                e.last = now
                age = 0
            if (e.permanent and age > p.forget_hours * 3600) or (not e.permanent and age > track_s):
                continue
            keep.append(e)
        if len(keep) > p.max_entries:
            keep.sort(key=lambda e: (e.permanent, e.last), reverse=True)
            keep = keep[: p.max_entries]
        self._entries = keep

    # ------------------------------------------------------------ posters

    def _posters(self, items: list[tuple[_Line, list[str], _Entry]]) -> Observations:
        p = self.params
        n = len(items)
        if not n:
            return Observations()
        parent = list(range(n))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(n):
            a = items[i][0]
            for j in range(i + 1, n):
                b = items[j][0]
                if _close(a, b, p.group_gap_x, p.group_gap_y, self._aspect):
                    parent[find(i)] = find(j)
        groups: dict[int, list[int]] = {}
        for i in range(n):
            groups.setdefault(find(i), []).append(i)
        boxes, scores, extras = [], [], []
        for idx in groups.values():
            members = sorted((items[i] for i in idx), key=lambda it: (round(it[0].xyxy[1], 3), it[0].xyxy[0]))
            chars = sum(len(ln.text.replace(" ", "")) for ln, _, _ in members)
            if chars < p.min_poster_chars:
                continue
            xy = np.asarray([ln.xyxy for ln, _, _ in members], np.float32)
            phones: list[str] = []
            for _, phs, _ in members:
                for ph in phs:
                    if ph not in phones:
                        phones.append(ph)
            weight = np.asarray([len(ln.text.replace(" ", "")) for ln, _, _ in members], np.float32)
            score = float(np.dot(weight, [ln.score for ln, _, _ in members]) / weight.sum())
            boxes.append((xy[:, 0].min(), xy[:, 1].min(), xy[:, 2].max(), xy[:, 3].max()))
            scores.append(score)
            extras.append(
                {
                    "text": "\n".join(ln.text for ln, _, _ in members),
                    "phones": phones,
                    "char_px": round(float(np.median([ln.char_px for ln, _, _ in members])), 1),
                    "since": datetime.fromtimestamp(min(e.first for _, _, e in members), tz=self._tz).isoformat(),
                }
            )
        if not boxes:
            return Observations()
        return Observations.build(boxes, scores, [LABEL] * len(boxes), extras)


# ---------------------------------------------------------------- geometry and text helpers


def _tiles(img: NDArray[np.uint8], tile: int, overlap: int) -> list[tuple[int, int, NDArray[np.uint8]]]:
    """Overlapping tiles covering `img`, each padded to multiples of 32 (the detector's stride)."""
    h, w = img.shape[:2]
    out = []
    for y0, y1 in _spans(h, tile, overlap):
        for x0, x1 in _spans(w, tile, overlap):
            t = img[y0:y1, x0:x1]
            ph, pw = (-t.shape[0]) % 32, (-t.shape[1]) % 32
            if ph or pw:
                t = cv2.copyMakeBorder(t, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
            out.append((x0, y0, t))
    return out


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    if length <= tile:
        return [(0, length)]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)
    starts = [min(i * (size - overlap), length - size) for i in range(n)]
    return [(s, s + size) for s in starts]


def _short_side(q: Quad) -> float:
    return float(min(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2])))


def _order(pts: NDArray[np.float32]) -> Quad:
    """tl, tr, br, bl of a min-area rectangle around `pts` (text runs left to right)."""
    rect = cv2.minAreaRect(pts.astype(np.float32))
    box = cv2.boxPoints(rect)
    box = box[np.argsort(box[:, 0], kind="stable")]
    left, right = box[:2], box[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.asarray([tl, tr, br, bl], np.float32)


def _join_lines(quads: list[tuple[Quad, int]]) -> list[Quad]:
    """Joins detections of one line split by tile borders, and duplicates from overlapping tiles."""
    n = len(quads)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if _same_line(quads[i][0], quads[j][0], cross_tile=quads[i][1] != quads[j][1]):
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    out = []
    for idx in sorted(groups.values()):
        if len(idx) == 1:
            out.append(quads[idx[0]][0])
        else:
            out.append(_order(np.concatenate([quads[i][0] for i in idx])))
    return out


def _same_line(a: Quad, b: Quad, cross_tile: bool) -> bool:
    """Two boxes of one text line: overlapping, or (across tiles) touching end to end at one height."""
    ax0, ay0 = a.min(axis=0)
    ax1, ay1 = a.max(axis=0)
    bx0, by0 = b.min(axis=0)
    bx1, by1 = b.max(axis=0)
    ha, hb = _short_side(a), _short_side(b)
    if min(ha, hb) <= 0 or max(ha, hb) > 1.6 * min(ha, hb):
        return False
    iw, ih = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if ih < 0.6 * min(ay1 - ay0, by1 - by0):
        return False
    if iw > 0:
        inter = iw * ih
        small = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))
        if inter >= 0.5 * small:  # a duplicate, or one contains the other
            return True
        return cross_tile
    return cross_tile and -iw <= 0.3 * min(ha, hb)


def _straighten(img: NDArray[np.uint8], q: Quad, height: int) -> NDArray[np.uint8] | None:
    """The line under quad `q` (px of `img`) warped upright to `height` px (one cubic resampling)."""
    wq = max(np.linalg.norm(q[0] - q[1]), np.linalg.norm(q[3] - q[2]))
    hq = max(np.linalg.norm(q[0] - q[3]), np.linalg.norm(q[1] - q[2]))
    if hq < 3 or wq < 3:
        return None
    out_w = max(8, min(int(round(height * wq / hq)), 40 * height))
    dst = np.float32([[0, 0], [out_w, 0], [out_w, height], [0, height]])
    m = cv2.getPerspectiveTransform(q.astype(np.float32), dst)
    return cv2.warpPerspective(img, m, (out_w, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _ink_height(line: NDArray[np.uint8]) -> float:
    """Height of the characters in a straightened line, as a fraction of its height.

    Otsu splits ink from paper (the minority class is ink, dark or light); the
    band of rows holding at least 30% of the peak row's ink, around that peak,
    is the characters' body.
    """
    g = cv2.cvtColor(line, cv2.COLOR_BGR2GRAY) if line.ndim == 3 else line
    _, bw = cv2.threshold(g, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = bw == 0 if (bw == 0).mean() < 0.5 else bw == 1
    rows = ink.mean(axis=1)
    if rows.max() <= 0:
        return 0.0
    on = rows > 0.3 * rows.max()
    a = b = int(np.argmax(rows))
    while a > 0 and on[a - 1]:
        a -= 1
    while b < len(on) - 1 and on[b + 1]:
        b += 1
    return (b - a + 1) / len(on)


def _dedupe(lines: list[_Line]) -> list[_Line]:
    """One line per place when zones overlap: the most confident reading."""
    out: list[_Line] = []
    for ln in sorted(lines, key=lambda x: -x.score):
        if all(_iou(ln.xyxy, o.xyxy) < 0.5 for o in out):
            out.append(ln)
    return out


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Fraction of box `a` inside box `b`."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    area = (a[2] - a[0]) * (a[3] - a[1])
    return 0.0 if iw <= 0 or ih <= 0 or area <= 0 else iw * ih / area


def _norm_text(s: str) -> str:
    return "".join(unicodedata.normalize("NFKC", s).split()).upper()


def _similarity(a: str, b: str) -> float:
    a, b = _norm_text(a), _norm_text(b)
    if not a or not b:
        return 0.0
    if len(a) >= 2 and len(b) >= 2 and (a in b or b in a):
        return 1.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def _match(line: _Line, entries: list[_Entry], p: TextParams) -> list[_Entry]:
    """The entries that hold this line: it lies mostly on them and reads like them (all of them, joined)."""
    lh = line.xyxy[3] - line.xyxy[1]
    cands = []
    for e in entries:
        grown = (e.xyxy[0] - lh, e.xyxy[1] - lh / 2, e.xyxy[2] + lh, e.xyxy[3] + lh / 2)
        if _overlap(line.xyxy, grown) > 0:
            cands.append((e, grown))
    if not cands:
        return []
    # the part of the line on the candidates (boxes of one view rarely overlap: a sum is close enough)
    on = min(1.0, sum(_overlap(line.xyxy, g) for _, g in cands))
    if on < p.match_overlap:
        return []
    joined = "".join(e.text for e, _ in sorted(cands, key=lambda c: (round(c[0].xyxy[1], 2), c[0].xyxy[0])))
    best = max(_similarity(line.text, e.text) for e, _ in cands)
    if max(best, _similarity(line.text, joined)) < p.match_similarity:
        return []
    return [e for e, _ in cands]


def _close(a: _Line, b: _Line, gap_x: float, gap_y: float, aspect: float) -> bool:
    """Lines of one poster: near each other, gaps counted in line heights (`aspect`: frame w / h)."""
    hh = max(a.xyxy[3] - a.xyxy[1], b.xyxy[3] - b.xyxy[1])
    gy = max(0.0, max(a.xyxy[1], b.xyxy[1]) - min(a.xyxy[3], b.xyxy[3]))
    gx = max(0.0, max(a.xyxy[0], b.xyxy[0]) - min(a.xyxy[2], b.xyxy[2])) * aspect
    return gy <= gap_y * hh and gx <= gap_x * hh


def _voted(votes: dict[str, int]) -> list[str]:
    """The number read most often on one line, when at least two reads agree and no other ties it."""
    if not votes:
        return []
    top = max(votes.values())
    best = [ph for ph, c in votes.items() if c == top]
    return best if top >= 2 and len(best) == 1 else []
