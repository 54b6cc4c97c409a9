"""Which version of each detector model runs, and where a candidate runs in shadow.

Model files live in `models/<name>/<version>/` (model.onnx + manifest.yaml); a model's
`default_version` file names the version the repository ships. Trainers' decisions —
promote a version, roll back, run a version in shadow on some cameras — are rows in
`model_deployments`, audited, and win over the shipped default. The running pipeline
polls `desired()` and swaps models in place, so a promotion needs no restart.

A model folder holding manifest.yaml directly (`models/<name>/`) is one unversioned
model: its version is the manifest's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accounts import Principal, audit
from detector.models.manifest import MANIFEST_FILENAME, load_manifest
from detector.store.db import ModelDeployment

DEFAULT_VERSION_FILE = "default_version"


class DeploymentError(ValueError):
    """A deployment request that cannot be done (unknown model or version, nothing to roll back to)."""


def _version_key(v: str) -> list[tuple[int, int | str]]:
    """Natural order: 1.2 < 1.10, 2026-11-28 < 2026-12-01."""
    return [(0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"[.\-_]", v)]


@dataclass(frozen=True)
class ModelStore:
    """The models folder: names, versions, paths."""

    root: Path

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.versions(p.name))

    def versions(self, name: str) -> list[str]:
        folder = self.root / name
        if (folder / MANIFEST_FILENAME).exists():
            return [load_manifest(folder).version]
        if not folder.is_dir():
            return []
        # dot-folders are versions still being written (training.registry renames them when whole)
        found = [p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / MANIFEST_FILENAME).exists()]
        return sorted(found, key=_version_key)

    def path(self, name: str, version: str) -> Path:
        """The folder of one version.

        Raises:
            DeploymentError: no such model or version.
        """
        folder = self.root / name
        if (folder / MANIFEST_FILENAME).exists() and load_manifest(folder).version == version:
            return folder
        if version in self.versions(name):
            return folder / version
        raise DeploymentError(f"model {name!r} has no version {version!r} (has: {self.versions(name) or 'none'})")

    def default_version(self, name: str) -> str | None:
        """The version the repository ships: `default_version`, else the only or newest one."""
        pinned = self.root / name / DEFAULT_VERSION_FILE
        if pinned.exists():
            return pinned.read_text().strip()
        versions = self.versions(name)
        return versions[-1] if versions else None


@dataclass(frozen=True)
class ShadowRun:
    run_id: int  # model_deployments.id
    version: str
    cameras: frozenset[str] | None  # None: every camera using the model


@dataclass(frozen=True)
class Desired:
    """What should run now: the active version per model and the shadows."""

    active: dict[str, str]  # model → version
    shadows: dict[str, ShadowRun]  # model → its open shadow run

    def shadow_for(self, model: str, camera_id: str) -> ShadowRun | None:
        run = self.shadows.get(model)
        return run if run and (run.cameras is None or camera_id in run.cameras) else None


def _open(s: Session, model: str, role: str) -> ModelDeployment | None:
    return s.scalars(
        select(ModelDeployment)
        .where(ModelDeployment.model == model, ModelDeployment.role == role, ModelDeployment.ended_at.is_(None))
        .order_by(ModelDeployment.id.desc())
    ).first()


def desired(s: Session, store: ModelStore) -> Desired:
    active = {n: v for n in store.names() if (v := store.default_version(n))}
    shadows: dict[str, ShadowRun] = {}
    rows = s.scalars(select(ModelDeployment).where(ModelDeployment.ended_at.is_(None)).order_by(ModelDeployment.id))
    for row in rows:
        if row.role == "active":
            active[row.model] = row.version
        else:
            cameras = frozenset(row.cameras) if row.cameras is not None else None
            shadows[row.model] = ShadowRun(row.id, row.version, cameras)
    return Desired(active, shadows)


def active_version(s: Session, store: ModelStore, model: str) -> str | None:
    return desired(s, store).active.get(model)


def _end(s: Session, row: ModelDeployment | None, now: datetime) -> None:
    if row is not None:
        row.ended_at = now


#: a candidate whose AP50 on a class falls further than this below the active model's is refused
MAX_AP50_DROP = 0.05


def promotion_problems(store: ModelStore, model: str, version: str, active: str | None) -> list[str]:
    """Why `version` should not replace `active`, from the evaluations in their manifests:
    no evaluation, a class at AP50 0, a class of the active model it does not know, or a class
    more than MAX_AP50_DROP worse on the same validation set. Empty: fit to promote."""
    candidate = load_manifest(store.path(model, version)).metrics
    per_class = candidate.get("per_class") or {}
    if not per_class:
        return [f"{version} has no evaluation in its manifest (metrics.per_class): evaluate and register it"]
    problems = [f"{cls}: AP50 0.000" for cls, m in per_class.items() if round(float(m.get("AP50", 0)), 3) == 0]
    if active is None or active == version:
        return problems
    current = load_manifest(store.path(model, active)).metrics
    if not current.get("per_class"):
        return problems
    if candidate.get("dataset") != current.get("dataset"):
        where = f"{candidate.get('dataset')!r}, the active {active} on {current.get('dataset')!r}"
        return [*problems, f"measured on {where}: not comparable"]
    for cls, old in current["per_class"].items():
        if cls not in per_class:
            problems.append(f"{cls}: not a class of {version} (the active {active} has it)")
        elif float(per_class[cls]["AP50"]) < float(old["AP50"]) - MAX_AP50_DROP:
            new_ap, old_ap = float(per_class[cls]["AP50"]), float(old["AP50"])
            problems.append(f"{cls}: AP50 {new_ap:.3f}, {old_ap - new_ap:.3f} below the active {active} ({old_ap:.3f})")
    return problems


def promote(
    s: Session, store: ModelStore, model: str, version: str, actor: Principal | str, *, force: str | None = None
) -> None:
    """Makes `version` the active one (ending its shadow run, if any). A version worse than the
    active one (`promotion_problems`) is refused unless `force` gives the reason, which is audited.

    Raises:
        DeploymentError: unknown model or version, or a refused promotion.
    """
    store.path(model, version)
    before = active_version(s, store, model)
    problems = promotion_problems(store, model, version, before)
    if problems and not force:
        raise DeploymentError(
            f"model {model!r}: {version} is not promoted over {before}: {'; '.join(problems)} "
            "(to promote it anyway, force it with a reason)"
        )
    now = datetime.now(UTC)
    _end(s, _open(s, model, "active"), now)
    shadow = _open(s, model, "shadow")
    if shadow is not None and shadow.version == version:
        _end(s, shadow, now)
    s.add(ModelDeployment(model=model, version=version, role="active", actor=_name(actor), started_at=now))
    after = {"version": version, **({"forced": force, "problems": problems} if problems else {})}
    audit(s, actor, "model.promote", f"model:{model}", {"version": before}, after)


def rollback(s: Session, store: ModelStore, model: str, actor: Principal | str) -> str:
    """Goes back to the version that was active before the current one; returns it.

    Raises:
        DeploymentError: nothing was promoted, so there is nothing to roll back.
    """
    current = _open(s, model, "active")
    if current is None:
        raise DeploymentError(f"model {model!r}: no promotion recorded, nothing to roll back")
    earlier = s.scalars(
        select(ModelDeployment)
        .where(ModelDeployment.model == model, ModelDeployment.role == "active", ModelDeployment.id < current.id)
        .order_by(ModelDeployment.id.desc())
    ).first()
    now = datetime.now(UTC)
    _end(s, current, now)
    if earlier is not None:  # re-open the earlier choice as a new row: the history stays linear
        target = earlier.version
        s.add(ModelDeployment(model=model, version=target, role="active", actor=_name(actor), started_at=now))
    else:
        target = store.default_version(model) or ""
    audit(s, actor, "model.rollback", f"model:{model}", {"version": current.version}, {"version": target})
    return target


def start_shadow(
    s: Session, store: ModelStore, model: str, version: str, cameras: list[str] | None, actor: Principal | str
) -> None:
    """Runs `version` beside the active one on `cameras` (None: all): findings stored, never filed.

    Raises:
        DeploymentError: unknown model or version.
    """
    store.path(model, version)
    now = datetime.now(UTC)
    old = _open(s, model, "shadow")
    _end(s, old, now)
    s.add(
        ModelDeployment(
            model=model, version=version, role="shadow", cameras=cameras, actor=_name(actor), started_at=now
        )
    )
    before = {"version": old.version, "cameras": old.cameras} if old else None
    audit(s, actor, "model.shadow", f"model:{model}", before, {"version": version, "cameras": cameras})


def stop_shadow(s: Session, model: str, actor: Principal | str) -> None:
    """Ends the model's shadow run.

    Raises:
        DeploymentError: no shadow run is open.
    """
    old = _open(s, model, "shadow")
    if old is None:
        raise DeploymentError(f"model {model!r}: no shadow run to stop")
    _end(s, old, datetime.now(UTC))
    audit(s, actor, "model.shadow_stop", f"model:{model}", {"version": old.version, "cameras": old.cameras}, None)


def current_shadow(s: Session, model: str) -> ModelDeployment | None:
    return _open(s, model, "shadow")


def _name(actor: Principal | str) -> str:
    return actor.name if isinstance(actor, Principal) else actor
