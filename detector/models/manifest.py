"""The manifest that travels with every detection model (`<model_dir>/manifest.yaml`).

The ONNX file alone does not say which classes its outputs mean, how its
input was normalised during training, or which thresholds were tuned for it;
getting any of these wrong silently produces plausible but wrong boxes. The
manifest makes them explicit, is validated strictly (unknown keys are errors,
so typos never fall back to defaults) and also records provenance: metrics
and the licences of the data the weights were trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

MANIFEST_FILENAME = "manifest.yaml"

#: ultralytics' strides go up to 32: other input sizes misalign the feature grids
_STRIDE = 32


class ModelManifestError(ValueError):
    """A manifest is missing, unreadable or invalid; the message names file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """How a frame becomes the model's input tensor (must match training)."""

    width: int = Field(gt=0, description="Model input width in pixels; a multiple of 32.")
    height: int = Field(gt=0, description="Model input height in pixels; a multiple of 32 (may differ from width).")
    channel_order: Literal["rgb", "bgr"] = Field(
        "rgb", description="Channel order the model expects; frames are BGR and are swapped for 'rgb'."
    )
    scale: float = Field(1 / 255, gt=0, description="Multiplier applied to uint8 pixel values first.")
    mean: tuple[float, float, float] | None = Field(
        None, description="Per-channel mean subtracted after scaling, in `channel_order`; none: 0."
    )
    std: tuple[float, float, float] | None = Field(
        None, description="Per-channel std dividing after the mean, in `channel_order`; none: 1."
    )
    pad_value: int = Field(114, ge=0, le=255, description="uint8 value of the letterbox border (ultralytics: 114).")

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_stride(cls, v: int) -> int:
        if v % _STRIDE:
            raise ValueError(f"must be a multiple of {_STRIDE} (got {v})")
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if v is not None and min(v) <= 0:
            raise ValueError(f"every std must be > 0 (got {list(v)})")
        return v


class Thresholds(_Strict):
    """Operating point tuned on the validation set."""

    conf: float = Field(0.25, ge=0, le=1, description="Minimum class score to keep a box.")
    iou: float = Field(0.45, ge=0, le=1, description="IoU above which NMS drops the weaker box of the same class.")
    per_class_conf: dict[str, float] = Field(
        default_factory=dict, description="Class name → minimum score overriding `conf`; names must be in `classes`."
    )

    @field_validator("per_class_conf")
    @classmethod
    def _in_unit_range(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: s for k, s in v.items() if not 0 <= s <= 1}
        if bad:
            raise ValueError(f"thresholds must be within [0, 1] (got {bad})")
        return v


class DataLicence(_Strict):
    """Where part of the training data came from and under which terms."""

    dataset: str = Field(min_length=1, description="Data set name, e.g. 'TACO'.")
    licence: str = Field(min_length=1, description="Licence identifier (SPDX where possible), e.g. 'CC-BY-4.0'.")
    source: str = Field(min_length=1, description="Where it was obtained (URL or internal reference).")
    attribution: str | None = Field(None, description="Attribution text the licence requires, if any.")


class WeightsOrigin(_Strict):
    """Where weights that GridSight did not train came from, and under which terms."""

    model: str = Field(min_length=1, description="What the weights are, e.g. 'NanoDet trained on COCO'.")
    licence: str = Field(min_length=1, description="Licence of the weights (SPDX where possible).")
    source: str = Field(min_length=1, description="Package or address they were taken from.")


class ModelManifest(_Strict):
    """Everything the runtime needs to know about a model besides its weights."""

    name: str = Field(min_length=1, description="Model name, e.g. 'street-litter'.")
    version: str = Field(min_length=1, description="Model version; quote it in YAML so '1.10' stays a string.")
    task: Literal["detect"] = Field("detect", description="What the model does; only detection is supported.")
    format: Literal["yolov8"] = Field(
        description=(
            "Output layout. 'yolov8': ultralytics ONNX export, one output (batch, 4 + nc, N) holding"
            " cx, cy, w, h in input pixels then nc class scores; no objectness."
        )
    )
    classes: list[str] = Field(
        min_length=1,
        description="Class names in output order; unique, non-empty, without ':' (labels are 'detector:<class>').",
    )
    input: InputSpec = Field(description="Input geometry and normalisation.")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Confidence and NMS thresholds.")
    max_detections: int = Field(100, gt=0, description="Most boxes kept per image after NMS.")
    metrics: dict[str, Any] = Field(
        default_factory=dict, description="Free-form evaluation results, e.g. {'mAP50': 0.61}; informative only."
    )
    weights: WeightsOrigin | None = Field(
        None, description="Origin and licence of weights taken from elsewhere; none: trained by GridSight."
    )
    data_licences: list[DataLicence] = Field(
        default_factory=list, description="Licences of every data set the weights were trained on."
    )
    training_command: str | None = Field(None, description="Command that produced the weights, for reproducibility.")
    dataset_hash: str | None = Field(None, description="sha256 of the training labels and image names.")

    @field_validator("classes")
    @classmethod
    def _valid_classes(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not c.strip() or c != c.strip() or ":" in c]
        if bad:
            raise ValueError(f"class names must be non-empty, unpadded and without ':' (got {bad})")
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"class names must be unique (duplicated: {dupes})")
        return v

    @field_validator("thresholds")
    @classmethod
    def _known_classes(cls, v: Thresholds, info: ValidationInfo) -> Thresholds:
        classes = info.data.get("classes")
        if classes is None:  # `classes` itself failed and is reported on its own
            return v
        unknown = sorted(set(v.per_class_conf) - set(classes))
        if unknown:
            raise ValueError(f"per_class_conf names classes not in `classes`: {unknown} (known: {classes})")
        return v

    def conf_thresholds(self) -> list[float]:
        """Minimum score per class id: `per_class_conf` where set, else `conf`."""
        t = self.thresholds
        return [t.per_class_conf.get(c, t.conf) for c in self.classes]


def _format_errors(e: ValidationError) -> str:
    lines = []
    for err in e.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "<top level>"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def load_manifest(model_dir: Path) -> ModelManifest:
    """Reads and validates `<model_dir>/manifest.yaml`.

    Raises:
        ModelManifestError: the file is missing or unreadable, is not YAML
            mapping, or a field is invalid; the message names the file and
            every offending field (e.g. `input.width`).
    """
    path = Path(model_dir) / MANIFEST_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ModelManifestError(f"{path}: cannot read model manifest: {e}") from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelManifestError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ModelManifestError(f"{path}: expected a mapping at top level, got {type(data).__name__}")
    try:
        return ModelManifest.model_validate(data)
    except ValidationError as e:
        raise ModelManifestError(f"{path}: invalid model manifest:\n{_format_errors(e)}") from e
