"""Shadow runs: a candidate model watches beside the active one and files nothing.

On a shadow camera the camera's detector also runs the candidate on every frame it
analyses and stores both models' boxes (`model_findings`). The report then answers the
trainer's questions before a promotion: where do the two models disagree, and which of
the operators' confirmed and rejected incidents would the candidate have found?
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from detector.analysis.onnx_detector import OnnxModel
from detector.store.db import Incident, ModelDeployment, ModelFinding
from detector.types import Frame, Observations

#: IoU at which a shadow box and an active box (same frame, same class) are the same finding
MATCH_IOU = 0.5
#: IoU at which a finding counts as having found a reviewed incident's box
INCIDENT_IOU = 0.3


class ShadowTap:
    """Runs the candidate on the frames a camera's detector analyses and hands both results to `sink`."""

    def __init__(
        self, run_id: int, model_name: str, candidate: OnnxModel, sink: Callable[[list[ModelFinding]], None]
    ) -> None:
        self.run_id = run_id
        self.model_name = model_name
        self.candidate = candidate
        self.sink = sink

    def observe(self, frame: Frame, active: OnnxModel, active_obs: Observations) -> None:
        shadow_obs = self.candidate.predict([frame.image])[0]
        rows = [
            *self._rows(frame, active.manifest.version, "active", active_obs),
            *self._rows(frame, self.candidate.manifest.version, "shadow", shadow_obs),
        ]
        if rows:
            self.sink(rows)

    def _rows(self, frame: Frame, version: str, role: str, obs: Observations) -> list[ModelFinding]:
        return [
            ModelFinding(
                run_id=self.run_id, model=self.model_name, version=version, role=role, camera_id=frame.camera_id,
                ts=frame.ts, label=label.split(":", 1)[-1], score=float(score), box=[round(float(v), 5) for v in box],
            )
            for box, score, label in zip(obs.xyxy, obs.scores, obs.labels, strict=True)
        ]  # fmt: skip


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _match(active: list[ModelFinding], shadow: list[ModelFinding]) -> int:
    """Greedy one-to-one matches by IoU within one frame and class."""
    used: set[int] = set()
    n = 0
    for s in sorted(shadow, key=lambda r: -r.score):
        best, best_iou = None, MATCH_IOU
        for i, a in enumerate(active):
            if i not in used and (iou := _iou(s.box, a.box)) >= best_iou:
                best, best_iou = i, iou
        if best is not None:
            used.add(best)
            n += 1
    return n


def shadow_report(s: Session, run: ModelDeployment) -> dict[str, Any]:
    """Compares a shadow run's findings with the active model's and with the operators' verdicts."""
    frames: dict[tuple[str, datetime, str], dict[str, list[ModelFinding]]] = defaultdict(lambda: defaultdict(list))
    for f in s.scalars(select(ModelFinding).where(ModelFinding.run_id == run.id)):
        frames[(f.camera_id, f.ts, f.label)][f.role].append(f)
    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    for (_cam, _ts, label), by_role in frames.items():
        a, sh = by_role.get("active", []), by_role.get("shadow", [])
        both = _match(a, sh)
        c = per_class[label]
        c["active"] += len(a)
        c["shadow"] += len(sh)
        c["both"] += both
        c["active_only"] += len(a) - both
        c["shadow_only"] += len(sh) - both
    verdicts = _verdicts(s, frames)
    return {
        "model": run.model,
        "version": run.version,
        "cameras": run.cameras,
        "since": run.started_at.isoformat(),
        "frames_with_findings": len({(cam, ts) for cam, ts, _ in frames}),
        "classes": {k: dict(v) for k, v in sorted(per_class.items())},
        "verdicts": verdicts,
    }


def _verdicts(
    s: Session, frames: dict[tuple[str, datetime, str], dict[str, list[ModelFinding]]]
) -> dict[str, dict[str, int]]:
    """Reviewed incidents of the shadow cameras while it ran: how many each model found (box overlap)."""
    by_camera: dict[str, list[ModelFinding]] = defaultdict(list)
    for (cam, _ts, _label), by_role in frames.items():
        for rows in by_role.values():
            by_camera[cam].extend(rows)
    out = {k: Counter[str]() for k in ("confirmed", "rejected")}
    if not by_camera:
        return {k: dict(v) for k, v in out.items()}
    seen = [f.ts for rows in by_camera.values() for f in rows]
    q = select(Incident).where(
        Incident.camera_id.in_(by_camera),
        Incident.review_state.in_(("confirmed", "relabelled", "rejected")),
        Incident.last_seen_at >= min(seen),
        Incident.first_seen_at <= max(seen),
    )
    for inc in s.scalars(q):
        verdict = "rejected" if inc.review_state == "rejected" else "confirmed"
        out[verdict]["incidents"] += 1
        box = list(np.asarray(inc.box, float).ravel()[:4])
        for role in ("active", "shadow"):
            found = any(
                f.role == role and inc.first_seen_at <= f.ts <= inc.last_seen_at and _iou(f.box, box) >= INCIDENT_IOU
                for f in by_camera[inc.camera_id]
            )
            out[verdict][f"found_by_{role}"] += found
    return {k: dict(v) for k, v in out.items()}
