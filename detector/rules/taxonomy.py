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


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="主管部门名称.")
    code: str | None = Field(None, pattern=r"^[0-9A-Z]{18}$", description="统一社会信用代码 (18 chars).")


class TimeLimitRule(BaseModel):
    """处置时限 for one area class and urgency (None matches any)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    area_class: str | None = Field(None, description="e.g. 核心区, 一般区; None = any.")
    urgency: str | None = Field(None, description="e.g. 紧急, 重大, 一般; None = any.")
    amount: float = Field(gt=0)
    unit: Literal["working_hours", "working_days", "natural_hours", "natural_days"]


class FilingPolicy(BaseModel):
    """When an incident is filed without an operator: confident and persistent enough."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["auto", "review"] = Field("review", description="review: always ask an operator first.")
    min_score: float = Field(0.5, ge=0, le=1, description="auto: file directly at or above this score ...")
    min_minutes: float = Field(0, ge=0, description="... and after this many minutes present; else review.")


DEFAULT_DESCRIPTION = (
    "{address}（{camera}）{zone_text}发现{name}，自{since}起持续约{minutes}分钟。视频自动发现，证据见附件。"
)


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
    case_type: Literal["事件", "部件"] = "事件"
    filing_condition: str = Field("", description="立案条件 (shown to operators, sent with the case).")
    closing_condition: str = Field("", description="结案条件.")
    department: Department = Department(name="城市管理综合执法局")
    time_limits: list[TimeLimitRule] = Field(
        default_factory=lambda: [TimeLimitRule(amount=4, unit="working_hours")],
        min_length=1,
        description="The first rule matching the case's area class and urgency applies.",
    )
    description: str = Field(
        DEFAULT_DESCRIPTION,
        description="Chinese template; fields: name code camera address street community zone (its display name, "
        "else its id) zone_text (empty for the whole view) since minutes score phones.",
    )
    filing: FilingPolicy = FilingPolicy()

    def time_limit(self, area_class: str, urgency: str) -> TimeLimitRule:
        """The applicable 处置时限 (the last rule is the fallback when none matches)."""
        for rule in self.time_limits:
            if rule.area_class in (None, area_class) and rule.urgency in (None, urgency):
                return rule
        return self.time_limits[-1]


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
