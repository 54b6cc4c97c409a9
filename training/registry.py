"""Register an exported model as `models/<name>/<version>/` — the only thing the runtime loads.

A version folder holds `model.onnx` (the file the cameras run), `manifest.yaml` (classes,
input, thresholds, metrics, dataset hash, training command, data licences) and, when
given, `weights.pt` so that training can continue from it. Registering never activates:
a new version runs only after `gridsight model shadow` / `promote`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from detector.models.deployments import DEFAULT_VERSION_FILE
from detector.models.manifest import MANIFEST_FILENAME, DataLicence, ModelManifest, load_manifest

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,39}$")


class RegisterError(ValueError):
    """The version exists already, the name or version is malformed, or the manifest is invalid."""


def load_licences(path: Path) -> list[dict[str, Any]]:
    """A YAML list of {dataset, licence, source, attribution}; each entry is validated.

    Raises:
        RegisterError: unreadable file or an invalid entry (named by its index and field).
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as e:
        raise RegisterError(f"{path}: cannot read licences: {e}") from e
    if not isinstance(raw, list):
        raise RegisterError(f"{path}: expected a list of licences")
    out = []
    for i, entry in enumerate(raw):
        try:
            out.append(DataLicence.model_validate(entry).model_dump())
        except ValueError as e:
            raise RegisterError(f"{path}: entry {i}: {e}") from e
    return out


def register(
    exported: Path,
    models_dir: Path,
    name: str,
    version: str,
    *,
    metrics: dict[str, Any] | None = None,
    licences: list[dict[str, Any]] | None = None,
    dataset_hash: str | None = None,
    training_command: str | None = None,
    weights: Path | None = None,
    make_default: bool = False,
) -> Path:
    """Copies `exported/model.onnx` + its manifest into `models_dir/name/version/`; returns that folder.

    `make_default` also writes `models_dir/name/default_version` — the version a fresh
    installation runs (what the repository ships); deployments recorded in the database
    still win over it.

    Raises:
        RegisterError: the version exists, name/version are malformed, or the resulting manifest is invalid.
    """
    for field, value in (("name", name), ("version", version)):
        if not _VERSION.match(value):
            raise RegisterError(f"{field}: {value!r} must be 1–40 letters, digits, '.', '_' or '-'")
    target = Path(models_dir) / name / version
    if target.exists():
        raise RegisterError(f"{target} exists: versions are immutable, register a new one")
    base = load_manifest(exported).model_dump(mode="json")
    base.update(name=name, version=version)
    if metrics:
        base["metrics"] = {**base.get("metrics", {}), **metrics}
    if licences is not None:
        base["data_licences"] = licences
    if dataset_hash:
        base["dataset_hash"] = dataset_hash
    if training_command:
        base["training_command"] = training_command
    try:
        manifest = ModelManifest.model_validate(base)
    except ValueError as e:
        raise RegisterError(f"manifest for {name}/{version}: {e}") from e
    staging = target.with_name(f".{version}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(Path(exported) / "model.onnx", staging / "model.onnx")
    if weights is not None:
        shutil.copyfile(weights, staging / "weights.pt")
    (staging / MANIFEST_FILENAME).write_text(
        yaml.safe_dump(manifest.model_dump(mode="json"), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    staging.rename(target)  # a version appears whole or not at all: the runtime may be listing the folder
    if make_default:
        (target.parent / DEFAULT_VERSION_FILE).write_text(f"{version}\n")
    return target
