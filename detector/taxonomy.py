"""Problem types (GB/T 47678.5 事项) and their default detection rules.

The list is data (`taxonomy.yaml` beside this module, or a deployment's own
file): adding a problem type is adding an entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUNDLED = Path(__file__).with_name("taxonomy.yaml")


class RuleSpec(BaseModel):
    """When analyzer outputs become a finding of one problem type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zones: list[str] = Field(
        default_factory=list, description="Zone purposes or names where it counts; empty = the whole view."
    )
    anchor: Literal["bottom_center", "overlap"] = Field(
        "bottom_center", description="bottom_center: the box's ground point lies in the zone; overlap: box area share."
    )
    min_overlap: float = Field(0.5, gt=0, le=1, description="For anchor=overlap: share of the box inside the zone.")
    min_score: float = Field(0.3, ge=0, le=1)
    min_area: float = Field(0.0, ge=0, le=1, description="Box area as a share of the frame.")
    max_area: float = Field(0.6, gt=0, le=1)
    schedule: str | None = Field(None, description="Name of a camera schedule; outside it the problem is not watched.")
    persistence: Persistence = Field(description="k of the last n analyses, present for ≥ minutes.")
    clear_minutes: float = Field(3.0, gt=0, description="Absent this long → the incident is cleared.")


class Persistence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    k: int = Field(ge=1)
    n: int = Field(ge=1)
    minutes: float = Field(ge=0)

    @model_validator(mode="after")
    def _k_le_n(self) -> Persistence:
        if self.k > self.n:
            raise ValueError(f"k ({self.k}) must not exceed n ({self.n})")
        return self


RuleSpec.model_rebuild()


class ProblemType(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^(0[1-9]|10)\d{3}$", description="GB/T 47678.5 大类 (2) + 小类 (3).")
    legacy_code: str | None = Field(None, description="CJ/T 214 / GB/T 30428.2 code still used by many platforms.")
    name_zh: str = Field(min_length=1, max_length=30)
    name_en: str = Field(min_length=1)
    outputs: list[str] = Field(
        min_length=1, description="Analyzer labels that count, e.g. occupancy:stationary, detector:garbage."
    )
    rule: RuleSpec


class Taxonomy:
    """Problem types by code."""

    def __init__(self, types: list[ProblemType]) -> None:
        self._by_code = {t.code: t for t in types}

    def __getitem__(self, code: str) -> ProblemType:
        return self._by_code[code]

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def __iter__(self) -> Iterator[ProblemType]:
        return iter(self._by_code.values())


def load_taxonomy(path: Path | None) -> Taxonomy:
    """Reads and validates a taxonomy file (the bundled one when `path` is None).

    Raises:
        ValueError: unreadable file, malformed entry or duplicate code; the
            message names the entry and field.
    """
    path = path or BUNDLED
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read taxonomy: {e}") from e
    entries = raw.get("problems") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a top-level 'problems' list")
    types: list[ProblemType] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        try:
            t = ProblemType.model_validate(entry)
        except ValidationError as e:
            err = e.errors(include_url=False)[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"{path}: problems.{i}.{field}: {err['msg']}") from e
        if t.code in seen:
            raise ValueError(f"{path}: problems.{i}.code: duplicate code {t.code}")
        seen.add(t.code)
        types.append(t)
    return Taxonomy(types)
