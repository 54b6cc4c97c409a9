"""Rules: observations → findings ("this problem holds now, here"). Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from detector.analysis.zones import ZoneMasks
from detector.config import Camera, resolve_rule
from detector.rules.taxonomy import Persistence, RuleSpec, Taxonomy
from detector.types import Observations

if TYPE_CHECKING:
    from detector.analysis.tamper import TamperState

WHOLE_VIEW = "view"  # zone name used when a rule is not limited to zones
STATIONARY, VENDING = "occupancy:stationary", "occupancy:vending"  # as detector.analysis.occupancy emits them
CELLS = 8  # the coarse grid of a case key: an 8x8 split of the view

#: Problem code of a camera whose view no longer matches its reference (moved, covered,
#: blurred): a maintenance incident for the operators, never a case — no national code
#: applies and the platform must not hear of it. Five characters: the width of problem_code.
MAINTENANCE = "MAINT"
#: Confirmed for a minute before it opens (a burst of black frames is not a covered lens);
#: cleared by the first analysis that sees the reference view again.
MAINTENANCE_RULE = RuleSpec(persistence=Persistence(k=3, n=3, minutes=1.0), clear_minutes=0.01, max_area=1.0)


@dataclass(frozen=True, slots=True)
class Finding:
    camera_id: str
    problem_code: str
    zone: str
    box: tuple[float, float, float, float]  # normalised xyxy
    score: float
    label: str
    ts: datetime
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def cell(self) -> tuple[int, int]:
        """Coarse cell of the box's bottom-centre: stable while the object stays put."""
        x = (self.box[0] + self.box[2]) / 2
        y = self.box[3]
        return min(int(x * CELLS), CELLS - 1), min(int(y * CELLS), CELLS - 1)


def case_key(camera: Camera, problem_code: str, zone: str, cell: tuple[int, int]) -> str:
    """Where and what — never a tracker id — so flicker cannot multiply cases."""
    return f"{camera.id}|{camera.ptz_preset or '-'}|{zone}|{problem_code}|{cell[0]},{cell[1]}"


@dataclass(frozen=True, slots=True)
class CameraRules:
    """A camera's effective rules, resolved once from taxonomy defaults + overrides."""

    camera: Camera
    rules: dict[str, RuleSpec]
    outputs: dict[str, frozenset[str]]
    zones: ZoneMasks

    @classmethod
    def build(cls, camera: Camera, taxonomy: Taxonomy) -> CameraRules:
        # In taxonomy order: an observation counts for the first of them it qualifies for (`findings`).
        problems = [t.code for t in taxonomy if t.code in camera.problems]
        rules = {code: resolve_rule(taxonomy, camera, code) for code in problems}
        outputs = {code: frozenset(taxonomy[code].outputs) for code in problems}
        # Maintenance findings come from the tamper check (`maintenance`), never from observations.
        rules[MAINTENANCE], outputs[MAINTENANCE] = MAINTENANCE_RULE, frozenset()
        return cls(camera=camera, rules=rules, outputs=outputs, zones=ZoneMasks(camera.zones))

    @property
    def labels(self) -> frozenset[str]:
        """Every analyzer label some watched problem needs."""
        return frozenset().union(*self.outputs.values())

    def watching(self, code: str, ts: datetime) -> bool:
        """False outside the rule's schedule window."""
        name = self.rules[code].schedule
        return name is None or self.camera.schedules[name].active(ts)

    def maintenance(self, view: TamperState, ts: datetime) -> list[Finding]:
        """The maintenance finding of a view that is off its reference (none while it matches)."""
        if view.ok:
            return []
        since = view.since.isoformat() if view.since else None
        return [
            Finding(
                camera_id=self.camera.id, problem_code=MAINTENANCE, zone=WHOLE_VIEW, box=(0.0, 0.0, 1.0, 1.0),
                score=view.score, label=f"tamper:{view.kind}", ts=ts,
                extras={"kind": view.kind, "since": since, **view.details},
            )
        ]  # fmt: skip

    def findings(self, obs: Observations, ts: datetime) -> list[Finding]:
        """The problem each observation is: the first watched problem, in taxonomy order, whose score, size,
        zone and schedule tests it passes. One thing is one problem: smoke is burning garbage or a barbecue,
        a stall is a stall or a mobile vendor, never both, which would file two cases for it."""
        out: list[Finding] = []
        if not len(obs):
            return out
        names = object_names(obs)
        matches = [_counts_as(lbl, obs.extras[i] if obs.extras else {}) for i, lbl in enumerate(obs.labels)]
        ignored = np.zeros(len(obs), bool)  # in an ignore zone, or already another problem
        for name in self.zones.ignored:
            ignored |= self.zones.contains(name, obs)
        for code, rule in self.rules.items():
            if not self.watching(code, ts):
                continue
            ok = (
                np.array([bool(m & self.outputs[code]) for m in matches])
                & (obs.scores >= rule.min_score)
                & (obs.area >= rule.min_area)
                & (obs.area <= rule.max_area)
                & ~ignored
            )
            if not ok.any():
                continue
            zone_of = np.full(len(obs), "", dtype=object)
            if rule.zones:
                for name in self.zones.select(rule.zones):
                    hit = (
                        self.zones.contains(name, obs)
                        if rule.anchor == "bottom_center"
                        else self.zones.overlap(name, obs) >= rule.min_overlap
                    )
                    zone_of[(zone_of == "") & hit] = name
                ok &= zone_of != ""
            else:
                zone_of[:] = WHOLE_VIEW
            ignored |= ok
            for i in np.flatnonzero(ok):
                out.append(
                    Finding(
                        camera_id=self.camera.id,
                        problem_code=code,
                        zone=str(zone_of[i]),
                        box=tuple(float(v) for v in obs.xyxy[i]),  # type: ignore[arg-type]
                        score=float(obs.scores[i]),
                        label=names[i],
                        ts=ts,
                        extras=dict(obs.extras[i]) if obs.extras else {},
                    )
                )
        return out


def _counts_as(label: str, extras: dict[str, Any]) -> frozenset[str]:
    """The outputs an observation counts as: its label, and "occupancy:vending" for a stationary object
    whose people nobody measured (an occupancy analyzer without `people`: it cannot rule a vendor out)."""
    if label == STATIONARY and "people" not in extras:
        return frozenset({label, VENDING})
    return frozenset({label})


def object_names(obs: Observations) -> list[str]:
    """Each observation's label, where a detector class names a class-agnostic one (occupancy) it covers.

    A stationary object that the detector also sees as an umbrella or a cart is
    reported as "detector:umbrella": the name tells an operator what it is; the
    rules still match on the original labels.
    """
    names = list(obs.labels)
    # a person beside or in front of a stall does not name it
    det = [j for j, lbl in enumerate(obs.labels) if lbl.startswith("detector:") and lbl != "detector:person"]
    if not det:
        return names
    for i, lbl in enumerate(obs.labels):
        if not lbl.startswith("occupancy:"):
            continue
        best, name = 0.0, lbl
        for j in det:
            a, b = obs.xyxy[i], obs.xyxy[j]
            inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
            smaller = min(float(obs.area[i]), float(obs.area[j]))
            if smaller > 0 and inter / smaller >= 0.5 and float(obs.scores[j]) > best:
                best, name = float(obs.scores[j]), obs.labels[j]
        names[i] = name
    return names
