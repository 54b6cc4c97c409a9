"""Object detection with an ultralytics YOLOv8 ONNX export, run by ONNX Runtime.

One `OnnxModel` (session + manifest) is shared by the `ObjectDetector`s of
all cameras that use it: the session is the expensive, thread-safe part; a
detector is just a camera's view of it (which classes it cares about).

Pre/post-processing mirrors ultralytics' so that boxes match validation:
letterbox (aspect-preserving resize, centred, border 114), argmax class per
candidate, confidence filter, class-aware NMS in input pixels (IoU is only
invariant to the letterbox's uniform scale, not to the non-uniform scaling
into normalised frame coordinates).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from onnxruntime.capi import onnxruntime_pybind11_state as _ort_state

from detector.analysis.base import Analyzer
from detector.analysis.plume import PLUME_CLASSES, PlumeCheck
from detector.models.manifest import ModelManifest, load_manifest
from detector.types import Frame, Observations

MODEL_FILENAME = "model.onnx"

_INPUT_DTYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
}


#: what InferenceSession raises for a bad file; ORT's exceptions share no base class
_ORT_LOAD_ERRORS: tuple[type[Exception], ...] = (
    RuntimeError,
    *tuple(
        getattr(_ort_state, n)
        for n in (
            "Fail",
            "InvalidArgument",
            "InvalidGraph",
            "InvalidProtobuf",
            "NoSuchFile",
            "NotImplemented",
            "RuntimeException",
        )
        if hasattr(_ort_state, n)
    ),
)


class OnnxModelError(ValueError):
    """The ONNX file is missing, unloadable or disagrees with its manifest."""


def _dim(d: Any) -> int | None:
    """A static dimension, or None where ONNX declares it symbolic/unknown."""
    return d if isinstance(d, int) and d > 0 else None


class _Letterbox:
    """Where one frame landed inside the model input, to map boxes back."""

    __slots__ = ("h", "left", "sx", "sy", "top", "w")

    def __init__(self, left: int, top: int, new_w: int, new_h: int, w: int, h: int) -> None:
        self.left, self.top, self.w, self.h = left, top, w, h
        # per-axis scales from the *rounded* resized size: exact inverse of what was drawn
        self.sx, self.sy = new_w / w, new_h / h


class OnnxModel:
    """A YOLOv8 ONNX model plus its manifest; thread-safe and shareable.

    Input buffers are kept per thread and reused, so steady-state
    preprocessing allocates nothing per frame.
    """

    def __init__(self, model_dir: Path, *, intra_op_num_threads: int = 1) -> None:
        """Loads `<model_dir>/model.onnx` and `<model_dir>/manifest.yaml`.

        One intra-op thread by default: many cameras run in parallel, and
        per-session thread pools would oversubscribe the cores.

        Raises:
            ModelManifestError: the manifest is missing or invalid.
            OnnxModelError: the model is missing or unloadable, or its input
                or output shape contradicts the manifest.
        """
        model_dir = Path(model_dir)
        self.manifest: ModelManifest = load_manifest(model_dir)
        path = model_dir / MODEL_FILENAME
        if not path.is_file():
            raise OnnxModelError(f"{path}: model file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_num_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except _ORT_LOAD_ERRORS as e:
            raise OnnxModelError(f"{path}: cannot load model: {e}") from e
        self.path = path

        m = self.manifest
        self.classes: tuple[str, ...] = tuple(m.classes)
        self._labels = tuple(f"detector:{c}" for c in self.classes)
        self._in_w, self._in_h = m.input.width, m.input.height
        self._check_io()

        # fold scale, mean and std into out = pixel * a[c] + b[c], per model channel
        mean = np.asarray(m.input.mean or (0.0, 0.0, 0.0), np.float64)
        std = np.asarray(m.input.std or (1.0, 1.0, 1.0), np.float64)
        self._a = [self._in_dtype(m.input.scale / s) for s in std]
        self._b = [self._in_dtype(-mu / s) for mu, s in zip(mean, std, strict=True)]
        # BGR frame channel feeding each model channel
        self._src_ch = (2, 1, 0) if m.input.channel_order == "rgb" else (0, 1, 2)
        self._conf = np.asarray(m.conf_thresholds(), np.float32)
        self._local = threading.local()

    def _check_io(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise OnnxModelError(
                f"{self.path}: expected 1 input and at least 1 output, got {len(inputs)} and {len(outputs)}"
            )
        inp, out = inputs[0], outputs[0]
        if inp.type not in _INPUT_DTYPES:
            raise OnnxModelError(f"{self.path}: input {inp.name!r} has type {inp.type}, expected float or float16")
        self._in_dtype = _INPUT_DTYPES[inp.type]
        if len(inp.shape) != 4:
            raise OnnxModelError(f"{self.path}: input {inp.name!r} has shape {inp.shape}, expected (batch, 3, H, W)")
        b, c, h, w = (_dim(d) for d in inp.shape)
        expected = {"channels": (c, 3), "height": (h, self._in_h), "width": (w, self._in_w)}
        for what, (got, want) in expected.items():
            if got is not None and got != want:
                raise OnnxModelError(
                    f"{self.path}: input {what} is {got} but manifest input says {want} (model input shape {inp.shape})"
                )
        #: fixed batch size of the model, None where the batch dimension is dynamic
        self.batch_size: int | None = b
        if len(out.shape) != 3:
            raise OnnxModelError(
                f"{self.path}: output {out.name!r} has shape {out.shape}, expected yolov8 (batch, 4 + nc, N)"
            )
        self._check_channels(_dim(out.shape[1]))
        self._in_name, self._out_name = inp.name, out.name

    def _check_channels(self, rows: int | None) -> None:
        nc = len(self.classes)
        if rows is not None and rows != 4 + nc:
            raise OnnxModelError(
                f"{self.path}: output has {rows} rows = 4 box + {rows - 4} classes,"
                f" but the manifest lists {nc} classes ({list(self.classes)})"
            )

    def class_ids(self, classes: Collection[str]) -> list[int]:
        """Ids of `classes`.

        Raises:
            ValueError: a name is not one of the model's classes.
        """
        unknown = sorted(set(classes) - set(self.classes))
        if unknown:
            raise ValueError(f"unknown classes {unknown} for model {self.manifest.name}; known: {list(self.classes)}")
        return [self.classes.index(c) for c in classes]

    # -- preprocessing -----------------------------------------------------

    def preprocess(self, image: NDArray[np.uint8]) -> NDArray[np.floating[Any]]:
        """The (1, 3, H, W) tensor this model is fed for the BGR `image` (INT8 calibration uses it)."""
        canvas, blob = self._buffers(1)
        self._letterbox(image, canvas)
        self._to_blob(canvas, blob[0])
        return blob.copy()

    def _buffers(self, n: int) -> tuple[NDArray[np.uint8], NDArray[np.floating[Any]]]:
        """This thread's letterbox canvas and an (n, 3, H, W) input view; grown to the largest batch seen."""
        loc = self._local
        blob = getattr(loc, "blob", None)
        if blob is None or blob.shape[0] < n:
            loc.canvas = np.empty((self._in_h, self._in_w, 3), np.uint8)
            loc.blob = blob = np.empty((n, 3, self._in_h, self._in_w), self._in_dtype)
        return loc.canvas, blob[:n]

    def _letterbox(self, image: NDArray[np.uint8], canvas: NDArray[np.uint8]) -> _Letterbox:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected a BGR uint8 HxWx3 image, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        W, H = self._in_w, self._in_h
        r = min(W / w, H / h)
        new_w, new_h = min(W, max(1, round(w * r))), min(H, max(1, round(h * r)))
        left, top = (W - new_w) // 2, (H - new_h) // 2
        pad = self.manifest.input.pad_value
        # border strips only; the inside is overwritten by the resize
        canvas[:top] = pad
        canvas[top + new_h :] = pad
        canvas[top : top + new_h, :left] = pad
        canvas[top : top + new_h, left + new_w :] = pad
        inner = canvas[top : top + new_h, left : left + new_w]
        if (new_w, new_h) == (w, h):
            inner[...] = image
        else:
            cv2.resize(image, (new_w, new_h), dst=inner, interpolation=cv2.INTER_LINEAR)
        return _Letterbox(left, top, new_w, new_h, w, h)

    def _to_blob(self, canvas: NDArray[np.uint8], out: NDArray[np.floating[Any]]) -> None:
        for c, src in enumerate(self._src_ch):
            np.multiply(canvas[:, :, src], self._a[c], out=out[c])
            if self._b[c]:
                out[c] += self._b[c]

    # -- inference ---------------------------------------------------------

    def predict(
        self, images: Sequence[NDArray[np.uint8]], *, classes: Collection[str] | None = None
    ) -> list[Observations]:
        """Detects objects in BGR `images`; one Observations (normalised xyxy) per image.

        Images are batched into one run when the model's batch dimension is
        dynamic, else run in chunks of its fixed batch size. `classes`, if
        given, restricts the output to those classes before NMS (so
        `max_detections` is spent on them only).

        Raises:
            ValueError: an image is not BGR uint8 HxWx3, or `classes` names
                an unknown class.
            OnnxModelError: the model's output does not have the yolov8
                layout the manifest promises.
        """
        if not images:
            return []
        conf = self._conf
        if classes is not None:
            conf = np.full_like(self._conf, np.inf)
            ids = self.class_ids(classes)
            conf[ids] = self._conf[ids]
        step = self.batch_size or len(images)
        results: list[Observations] = []
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            canvas, blob = self._buffers(step)
            boxes = []
            for i, image in enumerate(chunk):
                boxes.append(self._letterbox(image, canvas))
                self._to_blob(canvas, blob[i])
            if len(chunk) < step:  # fixed batch larger than what is left: pad with blanks
                blob[len(chunk) :] = 0
            (out,) = self._session.run([self._out_name], {self._in_name: blob})
            if out.ndim != 3 or out.shape[0] != step:
                raise OnnxModelError(
                    f"{self.path}: output shape {out.shape}, expected ({step}, {4 + len(self.classes)}, N)"
                )
            self._check_channels(out.shape[1])
            results.extend(self._decode(out[i], lb, conf) for i, lb in enumerate(boxes))
        return results

    def _decode(self, pred: NDArray[np.floating[Any]], lb: _Letterbox, conf: NDArray[np.float32]) -> Observations:
        """(4 + nc, N) raw output of one image → filtered, NMS'd, normalised Observations."""
        scores = pred[4:]
        best = scores.max(axis=0)
        cand = np.flatnonzero(best >= conf.min())
        if cand.size:
            cls = scores[:, cand].argmax(axis=0)
            score = best[cand].astype(np.float32)
            keep = score >= conf[cls]
            cand, cls, score = cand[keep], cls[keep], score[keep]
        if not cand.size:
            return Observations()
        cx, cy, bw, bh = pred[:4, cand].astype(np.float32)
        xywh = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], axis=1)
        t = self.manifest.thresholds
        # OpenCV's top_k cuts the candidates *before* suppression (overlapping boxes of a few
        # objects could crowd out the rest), so the limit is applied to NMS's sorted output.
        idx = cv2.dnn.NMSBoxesBatched(xywh, score, cls.astype(np.int32), 0.0, t.iou)
        idx = np.asarray(idx, np.intp).reshape(-1)[: self.manifest.max_detections]
        if not idx.size:
            return Observations()
        b = xywh[idx]
        xyxy = np.empty_like(b)
        # input pixels → letterbox removed → normalised frame coordinates
        xyxy[:, 0] = (b[:, 0] - lb.left) / (lb.sx * lb.w)
        xyxy[:, 1] = (b[:, 1] - lb.top) / (lb.sy * lb.h)
        xyxy[:, 2] = (b[:, 0] + b[:, 2] - lb.left) / (lb.sx * lb.w)
        xyxy[:, 3] = (b[:, 1] + b[:, 3] - lb.top) / (lb.sy * lb.h)
        np.clip(xyxy, 0.0, 1.0, out=xyxy)
        ids = cls[idx]
        return Observations(
            xyxy=xyxy,
            scores=score[idx],
            labels=tuple(self._labels[k] for k in ids),
            extras=tuple({"class_id": int(k)} for k in ids),
        )


class FrameTap(Protocol):
    """Sees every frame a detector analyses with its result (detector/models/shadow.py: a shadow run)."""

    def observe(self, frame: Frame, active: OnnxModel, active_obs: Observations) -> None: ...


class ObjectDetector(Analyzer):
    """A camera's detector: a shared OnnxModel, optionally limited to some classes.

    The model can be swapped while the pipeline runs (a promotion), and a shadow tap can
    run a candidate model on the same frames; both are plain attribute writes that the
    next frame picks up, read once per frame so one frame never mixes two models.
    The last frame's result is kept, so the occupancy analyzer asking for the people in
    a frame that the pipeline has it analyse anyway costs one inference, not two.
    """

    def __init__(self, model: OnnxModel, classes: set[str] | None = None, *, name: str = "detector") -> None:
        """Wraps `model`; `classes` (None: all) limits what this camera reports. `name` tells
        a camera's detectors apart (one per model); labels are "detector:<class>" for all.

        Raises:
            ValueError: `classes` names a class the model does not know.
        """
        if classes is not None:
            model.class_ids(classes)  # fail at configuration time, not on the first frame
        self.name = name
        self.model = model
        self.classes = frozenset(classes) if classes is not None else None
        self.wanted = self.classes
        self.shadow: FrameTap | None = None
        self._last: tuple[Frame, Observations] | None = None
        self._plumes = PlumeCheck()

    def swap(self, model: OnnxModel) -> None:
        """Runs `model` from the next frame on; classes it does not know are no longer reported."""
        classes = None if self.wanted is None else frozenset(self.wanted & set(model.classes))
        self.model, self.classes = model, classes

    def analyze(self, frame: Frame) -> Observations:
        """Detections in `frame`, labelled "detector:<class>"; smoke and fire only where the box moved."""
        last = self._last
        if last is not None and last[0] is frame:
            return last[1]
        model, classes, shadow = self.model, self.classes, self.shadow
        obs = model.predict([frame.image], classes=classes)[0]
        if shadow is not None:  # models are compared on what they detect, before the check
            shadow.observe(frame, model, obs)
        if PLUME_CLASSES.intersection(classes or model.classes):
            obs = self._plumes.keep_moving(frame.image, obs)
        self._last = (frame, obs)
        return obs

    def boxes(self, frame: Frame, label: str) -> NDArray[np.float32]:
        """Normalised xyxy boxes labelled `label` (e.g. "detector:person") in `frame`."""
        obs = self.analyze(frame)
        return obs.xyxy[np.asarray([lbl == label for lbl in obs.labels], bool)].astype(np.float32)
