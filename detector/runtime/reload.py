"""Config reload without a restart: what changed (pure), and a watch on the files' modification times.

The composition root (`app.GridSight.reload_config`) applies a plan: added cameras start,
removed ones stop, a camera whose stream settings changed is restarted, and one whose
zones, rules or problems changed gets them from its next analysis on, its readers and
learned state kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detector.config import Camera

#: what a running reader was opened with: a change of these restarts the camera
STREAM_FIELDS = ("source", "record", "cadence_s", "evidence", "enabled")


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    added: list[Camera] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restarted: list[Camera] = field(default_factory=list)  # stream settings changed
    updated: list[Camera] = field(default_factory=list)  # zones, rules, problems... changed: swapped in place

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.restarted or self.updated)


def plan(old: list[Camera], new: list[Camera]) -> ReloadPlan:
    """The changes that take the running cameras `old` to `new` (disabled cameras count as absent)."""
    before = {c.id: c for c in old if c.enabled}
    after = {c.id: c for c in new if c.enabled}
    out = ReloadPlan(
        added=[c for i, c in after.items() if i not in before],
        removed=[i for i in before if i not in after],
    )
    for cam_id, cam in after.items():
        was = before.get(cam_id)
        if was is None or was == cam:
            continue
        stream = any(getattr(was, f) != getattr(cam, f) for f in STREAM_FIELDS)
        # a patrolling camera's state is per preset, built from its stops: any change rebuilds it (restart),
        # its learned state and incidents reloaded from the database
        stream = stream or bool(was.patrol or cam.patrol)
        (out.restarted if stream else out.updated).append(cam)
    return out


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What a reload did, or why it was refused (`errors`: nothing was changed)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class ConfigWatch:
    """Notices a change of the folder's YAML files (added, removed, rewritten) by polling their stat."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self._seen = self._stat()

    def _stat(self) -> dict[str, tuple[int, int]]:
        out = {}
        for path in self.config_dir.glob("*.y*ml"):
            try:
                st = path.stat()
            except OSError:  # removed between the listing and the stat: seen next round
                continue
            out[path.name] = (st.st_mtime_ns, st.st_size)
        return out

    def changed(self) -> bool:
        """True once per change (the new state becomes the one compared against)."""
        now = self._stat()
        if now == self._seen:
            return False
        self._seen = now
        return True

    def mark(self) -> None:
        """The files as they are now are loaded (a reload by the API): no change to report."""
        self._seen = self._stat()
