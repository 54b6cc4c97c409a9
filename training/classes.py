"""Add a problem class in one step (`gridsight train class add`).

A new problem class is three edits that must agree:

1. a taxonomy entry — code, names, `outputs: [detector:<class>]`, rule defaults, the case
   fields (department, conditions, time limit) and `filing: {mode: review}`: a new model is
   never trusted to file on its own;
2. the deployment's own taxonomy: with `settings.taxonomy` unset, the bundled taxonomy is
   copied to `<config>/taxonomy/taxonomy.yaml` (a sub-folder: every `*.yaml` directly in the
   config folder is read as a camera file) and `settings.yaml` gains a `taxonomy:` line;
3. the detector class appended to the class-mapping file (`classes: [...]`), so imports and
   `from-reviews` label it; appended, so the ids of the existing classes do not move.

Everything is built in memory and checked with the real loaders first — `load_taxonomy` on
the new taxonomy, `load_config` on the configuration as it would be, `ClassMap.load` on the
new mapping — and only then written (each file atomically). A bad value raises
`ClassAddError` naming the command-line option, and nothing is written. Files are edited as
text (comments and layout kept) where that round-trips to exactly the intended data, and
re-dumped otherwise.

Settings paths are relative to the configuration folder (as every path in settings.yaml), so the
`taxonomy:` line names the copy as taxonomy/taxonomy.yaml, wherever the command was run.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from detector.config import SETTINGS_FILE, ZonePurpose, load_config
from detector.rules.taxonomy import BUNDLED, ProblemType, load_taxonomy
from training.datasets import ClassMap, DatasetError

OWN_TAXONOMY = Path("taxonomy") / "taxonomy.yaml"  # under the config folder
#: vertical surfaces and areas: a box counts by overlap, not by its ground point
OVERLAP_PURPOSES = frozenset({"wall", "pole", "shop_front", "construction_site"})
TIME_UNITS = ("working_hours", "working_days", "natural_hours", "natural_days")
_CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: pydantic field path of a ProblemType → the option that sets it
_OPTION = {
    "code": "--code",
    "legacy_code": "--legacy-code",
    "name_zh": "--name-zh",
    "name_en": "--name-en",
    "outputs": "--detector-class",
    "rule.zones": "--zones",
    "rule.anchor": "--anchor",
    "rule.min_score": "--min-score",
    "rule.persistence": "--persistence",
    "rule.clear_minutes": "--clear-minutes",
    "case_type": "--case-type",
    "filing_condition": "--filing-condition",
    "closing_condition": "--closing-condition",
    "department.name": "--department",
    "department.code": "--department-code",
    "time_limits": "--time-limit",
    "description": "--description",
}


class ClassAddError(ValueError):
    """The new class cannot be added; the message names the option or file at fault."""


@dataclass
class NewClass:
    """What `gridsight train class add` is told."""

    code: str
    name_zh: str
    name_en: str
    detector_class: str
    zones: list[str]
    department: str
    legacy_code: str | None = None
    department_code: str | None = None
    anchor: str | None = None  # None: overlap for wall/pole/shop_front/construction_site, else bottom_center
    min_score: float = 0.35
    persistence: tuple[int, int, float] = (3, 5, 10.0)  # k of n analyses, for ≥ minutes
    clear_minutes: float = 10.0
    case_type: str = "事件"
    filing_condition: str = ""
    closing_condition: str = ""
    time_limit: tuple[float, str] = (4.0, "working_hours")
    description: str | None = None

    def entry(self) -> dict[str, Any]:
        """The taxonomy entry, in the bundled file's key order."""
        anchor = self.anchor or ("overlap" if OVERLAP_PURPOSES & set(self.zones) else "bottom_center")
        k, n, minutes = self.persistence
        num = _num
        rule: dict[str, Any] = {"zones": list(self.zones)} if self.zones else {}
        rule |= {
            "anchor": anchor,
            "min_score": self.min_score,
            "persistence": {"k": k, "n": n, "minutes": num(minutes)},
            "clear_minutes": num(self.clear_minutes),
        }
        department: dict[str, Any] = {"name": self.department}
        if self.department_code:
            department["code"] = self.department_code
        entry: dict[str, Any] = {"code": self.code}
        if self.legacy_code:
            entry["legacy_code"] = self.legacy_code
        entry |= {
            "name_zh": self.name_zh,
            "name_en": self.name_en,
            "outputs": [f"detector:{self.detector_class}"],
            "rule": rule,
        }
        if self.case_type != "事件":
            entry["case_type"] = self.case_type
        if self.filing_condition:
            entry["filing_condition"] = self.filing_condition
        if self.closing_condition:
            entry["closing_condition"] = self.closing_condition
        entry |= {
            "department": department,
            "time_limits": [{"amount": num(self.time_limit[0]), "unit": self.time_limit[1]}],
        }
        if self.description:
            entry["description"] = self.description
        entry["filing"] = {"mode": "review"}
        return entry


def _num(v: float) -> float | int:
    """10.0 → 10, so the entry reads like the hand-written ones."""
    return int(v) if float(v).is_integer() else v


@dataclass
class ClassAddResult:
    taxonomy: Path  # the taxonomy file now holding the entry
    copied: bool  # the bundled taxonomy was copied there and settings.yaml points at it
    settings: Path
    classes: Path
    class_added: bool  # False: the mapping already listed the detector class
    notes: list[str] = field(default_factory=list)

    def render(self, new: NewClass) -> str:
        lines = [f"added problem {new.code} {new.name_zh} (detector:{new.detector_class}) to {self.taxonomy}"]
        if self.copied:
            lines.append(f"copied the bundled taxonomy there; {self.settings} now sets taxonomy: {self.taxonomy}")
        if self.class_added:
            lines.append(f"added class {new.detector_class} to {self.classes}")
        else:
            lines.append(f"{self.classes} already lists {new.detector_class}")
        lines += self.notes
        lines.append(
            "next: label data for it (gridsight train dataset import/from-reviews), train and deploy a model "
            f"that knows {new.detector_class}, then list {new.code} under a camera's problems"
        )
        return "\n".join(lines)


# --- text edits that keep comments ---------------------------------------------------------


def _edit(old_text: str, want: Any, candidates: list[Callable[[str], str | None]], dump: Callable[[], str]) -> str:
    """The first candidate edit of `old_text` that parses to exactly `want`; else a fresh dump."""
    for edit in candidates:
        text = edit(old_text)
        if text is None:
            continue
        try:
            if yaml.safe_load(text) == want:
                return text
        except yaml.YAMLError:
            continue
    return dump()


def _append_problem(text: str, entry: dict[str, Any], raw: dict[str, Any]) -> str:
    want = {**raw, "problems": [*raw["problems"], entry]}
    # flow style for the leaves, as in the bundled file: outputs: [detector:x], persistence: {k: 3, ...}
    block = yaml.safe_dump([entry], allow_unicode=True, sort_keys=False, width=1000, default_flow_style=None)
    base = text if text.endswith("\n") else text + "\n"

    def indented(n: int) -> Callable[[str], str]:
        pad = " " * n
        lines = [f"# {entry['code']}: added by gridsight train class add", *block.splitlines()]
        return lambda _: base + "".join(pad + line + "\n" for line in lines)

    return _edit(
        text, want, [indented(2), indented(0)],
        lambda: yaml.safe_dump(want, allow_unicode=True, sort_keys=False, width=1000),
    )  # fmt: skip


def _append_class(text: str, name: str, raw: dict[str, Any]) -> str:
    want = {**raw, "classes": [*raw["classes"], name]}

    def flow(t: str) -> str | None:  # classes: [a, b]  # comment
        m = re.search(r"^(classes:\s*\[[^\]\n]*?)(\s*)\]", t, flags=re.M)
        return None if m is None else t[: m.start()] + f"{m.group(1)}, {name}{m.group(2)}]" + t[m.end() :]

    def block(t: str) -> str | None:  # classes:\n  - a\n  - b
        m = re.search(r"^classes:[ \t]*(#.*)?\n((?:[ \t]*(?:-[^\n]*|#[^\n]*)?\n)*)", t, flags=re.M)
        if m is None:
            return None
        items = [ln for ln in m.group(2).splitlines() if ln.lstrip().startswith("-")]
        if not items:
            return None
        pad = items[-1][: len(items[-1]) - len(items[-1].lstrip())]
        last = t.index(items[-1] + "\n", m.start()) + len(items[-1]) + 1
        return t[:last] + f"{pad}- {name}\n" + t[last:]

    return _edit(
        text, want, [flow, block], lambda: yaml.safe_dump(want, allow_unicode=True, sort_keys=False, width=1000)
    )


def _set_taxonomy(text: str, value: str, raw: dict[str, Any]) -> str:
    want = {**raw, "taxonomy": value}
    line = f"taxonomy: {yaml.safe_dump(value, width=1000).splitlines()[0]}  # the deployment's own problem types"

    def replace(t: str) -> str | None:
        new, n = re.subn(r"^taxonomy:[^\n]*$", line, t, count=1, flags=re.M)
        return new if n else None

    def append(t: str) -> str:
        return (t if t.endswith("\n") or not t else t + "\n") + line + "\n"

    return _edit(
        text, want, [replace, append], lambda: yaml.safe_dump(want, allow_unicode=True, sort_keys=False, width=1000)
    )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if path.exists():
            shutil.copymode(path, tmp)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_mapping(path: Path, what: str) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ClassAddError(f"{path}: cannot read {what}: {e}") from e
    if not isinstance(raw, dict):
        raise ClassAddError(f"{path}: {what} must be a mapping")
    return text, raw


# --- validation ----------------------------------------------------------------------------


def _validate_new(new: NewClass) -> ProblemType:
    if not _CLASS_NAME.match(new.detector_class):
        raise ClassAddError(
            f"--detector-class: {new.detector_class!r} is not a class name (lower-case letters, digits, _; "
            "starting with a letter)"
        )
    purposes = {p.value for p in ZonePurpose} - {"ignore"}
    bad = [z for z in new.zones if z not in purposes]
    if bad:
        raise ClassAddError(f"--zones: unknown zone purpose(s) {bad}; known: {sorted(purposes)}")
    if new.time_limit[1] not in TIME_UNITS:
        raise ClassAddError(f"--time-limit: unit must be one of {TIME_UNITS}, got {new.time_limit[1]!r}")
    try:
        return ProblemType.model_validate(new.entry())
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in err["loc"])
        option = next((o for f, o in _OPTION.items() if loc == f or loc.startswith(f + ".")), loc)
        raise ClassAddError(f"{option}: {err['msg']} (taxonomy field {loc})") from e


def _config_problems(config_dir: Path, settings_text: str | None, taxonomy_text: str) -> list[str]:
    """`load_config` errors of the configuration as it would be (a copy in a temp folder)."""
    with tempfile.TemporaryDirectory(prefix="gridsight-class-add-") as tmp:
        mirror = Path(tmp) / "config"
        mirror.mkdir()
        for p in sorted(config_dir.glob("*.y*ml")):
            if p.name != SETTINGS_FILE:
                shutil.copyfile(p, mirror / p.name)
        taxonomy = Path(tmp) / "taxonomy.yaml"
        taxonomy.write_text(taxonomy_text, encoding="utf-8")
        raw = (yaml.safe_load(settings_text) or {}) if settings_text else {}
        raw["taxonomy"] = str(taxonomy)
        (mirror / SETTINGS_FILE).write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        loaded = load_config(mirror)
        return [f"{Path(e.file).name}{f' camera {e.camera}' if e.camera else ''}: {e.field}: {e.message}"
                for e in loaded.errors]  # fmt: skip


def _resolve(path: Path) -> Path:
    return path if path.is_absolute() else Path.cwd() / path


def add_class(new: NewClass, config_dir: Path, classes: Path) -> ClassAddResult:
    """Adds the problem class (see the module doc); validates everything before writing anything.

    Raises:
        ClassAddError: a bad option (the message names it), a duplicate code, or a file that
            cannot be read or would not load afterwards (the message names the file).
    """
    config_dir = Path(config_dir)
    if not config_dir.is_dir():
        raise ClassAddError(f"--config: {config_dir} is not a folder")
    problem = _validate_new(new)

    # -- where the taxonomy lives, and the settings that point at it
    before = load_config(config_dir)
    settings_path = config_dir / SETTINGS_FILE
    bad_settings = [str(e) for e in before.errors if Path(e.file).name == SETTINGS_FILE or e.field == "taxonomy"]
    if bad_settings:
        raise ClassAddError("fix the settings first: " + "; ".join(bad_settings))
    own = before.settings.taxonomy
    copied = own is None or _resolve(own).resolve() == BUNDLED.resolve()
    if copied:
        taxonomy_path = config_dir / OWN_TAXONOMY
        if taxonomy_path.exists():
            raise ClassAddError(
                f"{taxonomy_path} exists but {settings_path} does not set taxonomy: point settings.taxonomy "
                "at it (or remove it) and run again"
            )
        taxonomy_text, taxonomy_raw = _read_mapping(BUNDLED, "taxonomy")
    else:
        taxonomy_path = own
        taxonomy_text, taxonomy_raw = _read_mapping(_resolve(own), "taxonomy")
    current = before.taxonomy
    if problem.code in current:
        have = current[problem.code]
        raise ClassAddError(f"--code: {problem.code} is already in {taxonomy_path} ({have.name_zh} / {have.name_en})")
    notes = []
    if problem.legacy_code and any(t.legacy_code == problem.legacy_code for t in current):
        other = next(t for t in current if t.legacy_code == problem.legacy_code)
        notes.append(f"note: legacy code {problem.legacy_code} is also used by {other.code} {other.name_zh}")

    # -- the new texts
    if not isinstance(taxonomy_raw.get("problems"), list):
        raise ClassAddError(f"{taxonomy_path}: expected a top-level 'problems' list")
    new_taxonomy = _append_problem(taxonomy_text, new.entry(), taxonomy_raw)
    settings_text = settings_path.read_text(encoding="utf-8") if settings_path.is_file() else ""
    new_settings = None
    if copied:
        settings_raw = (yaml.safe_load(settings_text) or {}) if settings_text else {}
        new_settings = _set_taxonomy(settings_text, OWN_TAXONOMY.as_posix(), settings_raw)
    classes_text, classes_raw = _read_mapping(Path(classes), "class mapping")
    try:
        ClassMap.load(Path(classes))
    except DatasetError as e:
        raise ClassAddError(str(e)) from e
    class_added = new.detector_class not in classes_raw["classes"]
    new_classes = _append_class(classes_text, new.detector_class, classes_raw) if class_added else classes_text
    renamed = (classes_raw.get("map") or {}).get(new.detector_class, new.detector_class)
    if renamed != new.detector_class:
        notes.append(
            f"note: {classes}: map sends source class {new.detector_class} to {renamed}; "
            "edit the mapping if imported boxes of that name should count as the new class"
        )

    # -- check with the real loaders, then write
    with tempfile.TemporaryDirectory(prefix="gridsight-class-add-") as tmp:
        check = Path(tmp) / "taxonomy.yaml"
        check.write_text(new_taxonomy, encoding="utf-8")
        try:
            loaded = load_taxonomy(check)
        except ValueError as e:
            raise ClassAddError(str(e).replace(str(check), str(taxonomy_path))) from e
        if loaded[problem.code] != problem:
            raise ClassAddError(f"{taxonomy_path}: the edited file does not read back as the new entry")
        check_classes = Path(tmp) / "classes.yaml"
        check_classes.write_text(new_classes, encoding="utf-8")
        try:
            mapped = ClassMap.load(check_classes)
        except DatasetError as e:
            raise ClassAddError(str(e).replace(str(check_classes), str(classes))) from e
        if new.detector_class not in mapped.classes:
            raise ClassAddError(f"{classes}: the edited file does not list {new.detector_class}")
    old_errors = set(_config_problems(config_dir, settings_text, taxonomy_text))
    new_errors = [e for e in _config_problems(config_dir, new_settings or settings_text, new_taxonomy)
                  if e not in old_errors]  # fmt: skip
    if new_errors:
        raise ClassAddError(f"{config_dir}: the configuration would not load: " + "; ".join(new_errors))

    _write_atomic(_resolve(taxonomy_path), new_taxonomy)
    if class_added:
        _write_atomic(Path(classes), new_classes)
    if new_settings is not None:
        _write_atomic(settings_path, new_settings)  # last: it makes the runtime read the new taxonomy
    return ClassAddResult(taxonomy_path, copied, settings_path, Path(classes), class_added, notes)
