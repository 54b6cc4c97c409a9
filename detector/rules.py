"""Rules: observations → findings ("this problem holds now, here"). Pure functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from detector.config import Camera, resolve_rule
from detector.taxonomy import RuleSpec, Taxonomy
from detector.types import Observations
from detector.zones import ZoneMasks

WHOLE_VIEW = "view"  # zone name used when a rule is not limited to zones
CELLS = 8  # the coarse grid of a case key: an 8x8 split of the view


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
        return cls(
            camera=camera,
            rules={code: resolve_rule(taxonomy, camera, code) for code in camera.problems},
            outputs={code: frozenset(taxonomy[code].outputs) for code in camera.problems},
            zones=ZoneMasks(camera.zones),
        )

    @property
    def labels(self) -> frozenset[str]:
        """Every analyzer label some watched problem needs."""
        return frozenset().union(*self.outputs.values())

    def watching(self, code: str, ts: datetime) -> bool:
        """False outside the rule's schedule window."""
        name = self.rules[code].schedule
        return name is None or self.camera.schedules[name].active(ts)

    def findings(self, obs: Observations, ts: datetime) -> list[Finding]:
        """Every (problem, observation) pair that passes score, size, zone and schedule tests."""
        out: list[Finding] = []
        if not len(obs):
            return out
        ignored = np.zeros(len(obs), bool)
        for name in self.zones.ignored:
            ignored |= self.zones.contains(name, obs)
        for code, rule in self.rules.items():
            if not self.watching(code, ts):
                continue
            ok = (
                np.array([lbl in self.outputs[code] for lbl in obs.labels])
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
            for i in np.flatnonzero(ok):
                out.append(
                    Finding(
                        camera_id=self.camera.id,
                        problem_code=code,
                        zone=str(zone_of[i]),
                        box=tuple(float(v) for v in obs.xyxy[i]),  # type: ignore[arg-type]
                        score=float(obs.scores[i]),
                        label=obs.labels[i],
                        ts=ts,
                        extras=dict(obs.extras[i]) if obs.extras else {},
                    )
                )
        return out
