"""Edits of the camera files that keep what people wrote: comments, key order, quoting, the other cameras.

ruamel.yaml's round-trip mode reads the file into commented maps and writes it back
with only the changed nodes new. The new zones are checked with the config's own
`Camera` model (the whole entry, so duplicate names are caught too) before anything
is written; the file is replaced atomically, so the runtime's reload never reads half.

The loader reads YAML 1.1 (PyYAML), ruamel 1.2: values are always taken as the loader
sees them (`09006` is a string there, 9006 in 1.2), and new strings are quoted where
1.1 would read them otherwise (a zone named `no`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import SingleQuotedScalarString
from ruamel.yaml.util import load_yaml_guess_indent

from detector.config import SETTINGS_FILE, Camera, Zone

DIGITS = 4  # normalised coordinates: 1/10000 of the picture is below a pixel of 4K


class CameraFileError(ValueError):
    """The camera is in no file of the folder, or its file cannot be read or written."""


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str  # e.g. zones.0.polygon
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ZonesInvalid(ValueError):
    """The zones do not pass the config's validation; nothing was written."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(map(str, errors)))
        self.errors = errors


def _yaml(text: str) -> tuple[YAML, Any]:
    _, seq, dash = load_yaml_guess_indent(text)  # "  - id:" → 4, 2; "- id:" → 2, 0
    seq, dash = seq or 2, dash or 0
    y = YAML()  # round-trip; the whole file is re-emitted, so in the file's own indentation
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap long lines
    y.indent(mapping=max(seq - dash, 2), sequence=seq, offset=dash)
    return y, y.load(text)


def find_camera(config_dir: Path, camera_id: str) -> Path:
    """The camera file of `config_dir` whose `cameras:` list has `camera_id`.

    Raises:
        CameraFileError: no file has it.
    """
    for path in sorted(config_dir.glob("*.y*ml")):
        if path.name == SETTINGS_FILE:
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue  # a broken file is the loader's to report
        if _index(data, camera_id) is not None:
            return path
    raise CameraFileError(f"camera {camera_id!r} is in no camera file of {config_dir}")


def _index(data: Any, camera_id: str) -> int | None:
    """Where the camera is in the file's `cameras:` list, read as the loader reads it."""
    cams = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cams, list):
        return None
    return next((i for i, c in enumerate(cams) if isinstance(c, dict) and c.get("id") == camera_id), None)


def check_zones(entry: dict[str, Any], zones: list[Any]) -> list[Zone]:
    """The zones as the config would load them inside this camera entry.

    Raises:
        ZonesInvalid: with each bad field named (zones.N.field).
    """
    plain = {k: v for k, v in entry.items() if k != "zones"}
    try:
        return Camera.model_validate({**plain, "zones": zones}).zones
    except ValidationError as e:
        errors = []
        for err in e.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"]) or "zones"
            errors.append(FieldError(loc, err["msg"].removeprefix("Value error, ")))
        raise ZonesInvalid(errors) from e


def write_zones(config_dir: Path, camera_id: str, zones: list[Any]) -> tuple[Path, list[Zone]]:
    """Replaces the camera's zones in its file; returns the file and the zones as validated.

    A zone that keeps its name keeps its node (and the comments on it).

    Raises:
        CameraFileError: the camera is in no file, or the file cannot be written.
        ZonesInvalid: a zone is not valid; the file is unchanged.
    """
    path = find_camera(config_dir, camera_id)
    text = path.read_text(encoding="utf-8")
    plain = yaml.safe_load(text)
    i = _index(plain, camera_id)
    assert i is not None  # find_camera just found it
    valid = [
        z.model_copy(update={"polygon": [(round(x, DIGITS), round(y, DIGITS)) for x, y in z.polygon]})
        for z in check_zones(plain["cameras"][i], zones)
    ]
    y, data = _yaml(text)
    entry: CommentedMap = data["cameras"][i]
    old = {z.get("name"): z for z in entry.get("zones") or [] if isinstance(z, dict)}
    seq = CommentedSeq(_zone_node(z, old.get(z.name)) for z in valid)
    if "zones" in entry:
        entry["zones"] = seq
    else:  # after the problems if there are any, where people look for them
        keys = list(entry)
        at = keys.index("problems") if "problems" in keys else len(keys) - 1
        entry.insert(at + 1, "zones", seq)
    out = StringIO()
    y.dump(data, out)
    reread = yaml.safe_load(out.getvalue())["cameras"][i]
    if [Zone.model_validate(z) for z in reread.get("zones") or []] != valid:  # never write what loads otherwise
        raise CameraFileError(f"{path}: the zones of camera {camera_id!r} would not read back as written")
    _replace(path, out.getvalue())
    return path, valid


def _zone_node(zone: Zone, node: CommentedMap | None) -> CommentedMap:
    node = node if node is not None else CommentedMap()
    fields: dict[str, Any] = {"name": _str(zone.name)}
    if zone.display_name is not None:
        fields["display_name"] = _str(zone.display_name)
    fields["purpose"] = zone.purpose.value
    points = CommentedSeq(_flow([x, y]) for x, y in zone.polygon)
    points.fa.set_flow_style()
    fields["polygon"] = points
    for key in [k for k in node if k not in fields]:
        del node[key]
    for i, (key, value) in enumerate(fields.items()):
        if key in node:
            node[key] = value
        else:  # a new key in the model's order, not at the end
            node.insert(min(i, len(node)), key, value)
    return node


def _str(s: str) -> str:
    """`s`, quoted where the loader (YAML 1.1) would not read it back as this string."""
    try:
        same = yaml.safe_load(s) == s
    except yaml.YAMLError:
        same = False
    return s if same else SingleQuotedScalarString(s)


def _flow(items: list[float]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _replace(path: Path, text: str) -> None:
    """Writes beside the file, then renames over it: a reader sees the old file or the new one."""
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise CameraFileError(f"{path}: cannot write: {e}") from e
