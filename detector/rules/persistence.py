"""Persistence: which findings have held long enough to be a real problem. Pure, no I/O.

A candidate is keyed like a case (camera, preset, zone, problem, coarse cell).
It qualifies when it was present in ≥ k of the last n analyses *and* has been
present for ≥ T minutes since it (re)appeared (for occupancy, since the analyzer last saw its spot become
occupied: `_present_since`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from detector.rules.engine import CameraRules, Finding, case_key
from detector.rules.taxonomy import RuleSpec


@dataclass
class Candidate:
    key: str
    problem_code: str
    first_seen: datetime  # first hit since the last time it had no hit in n analyses
    last_hit: datetime
    history: deque[tuple[datetime, bool]]
    finding: Finding | None = None  # the latest hit
    score: float = 0.0
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    first_frame: str | None = None  # evidence path of the picture taken at `first_seen` (set by the manager)

    def hits(self) -> int:
        return sum(1 for _, hit in self.history if hit)

    @classmethod
    def from_row(cls, key: str, code: str, n: int, row: Any) -> Candidate:
        """The inverse of `to_row` (a `detector.store.db.Candidate` row)."""
        history = deque(((datetime.fromisoformat(t), bool(h)) for t, h in row.history), maxlen=n)
        return cls(
            key, code, row.first_seen_at, row.last_hit_at, history, None, row.score, tuple(row.box), row.first_frame
        )

    def to_row(self) -> dict[str, Any]:
        return {
            "case_key": self.key,
            "first_seen_at": self.first_seen,
            "last_hit_at": self.last_hit,
            "history": [[ts.isoformat(), int(hit)] for ts, hit in self.history],
            "score": self.score,
            "box": list(self.box),
            "first_frame": self.first_frame,
        }


def _prefix_and_cell(key: str) -> tuple[str, tuple[int, int]]:
    prefix, cell = key.rsplit("|", 1)
    x, y = cell.split(",")
    return prefix, (int(x), int(y))


@dataclass
class PersistenceTracker:
    """Candidates of one camera."""

    rules: CameraRules
    candidates: dict[str, Candidate] = field(default_factory=dict)

    def _key_for(self, f: Finding, pools: tuple[Iterable[str], ...]) -> str:
        key = case_key(self.rules.camera, f.problem_code, f.zone, f.cell)
        if key in self.candidates:
            return key
        # An object on a cell border may flip cells, or show as two parts: reuse a
        # neighbouring key, in the order of `pools` (live candidates, keys given out
        # in this analysis, recent incidents — so a problem recurs, not reopens).
        prefix, (cx, cy) = _prefix_and_cell(key)
        for pool in pools:
            for other in pool:
                p, (ox, oy) = _prefix_and_cell(other)
                if p == prefix and abs(ox - cx) <= 1 and abs(oy - cy) <= 1:
                    return other
        return key

    def update(
        self,
        findings: list[Finding],
        ts: datetime,
        keep: set[str],
        known: Iterable[str] = (),
        codes: frozenset[str] | None = None,
    ) -> dict[str, Candidate]:
        """Adds one analysis; returns the candidates hit in it.

        `keep`: keys of active incidents, whose candidates stay even when absent.
        `known`: keys of recently cleared incidents, preferred for neighbouring cells.
        `codes`: only these problems were looked at (a paused camera): the others'
        candidates are left as they are, neither hit nor missed.
        """
        best: dict[str, Finding] = {}
        known = list(known)
        for f in sorted(findings, key=lambda f: -f.score):  # the strongest part names the place
            k = self._key_for(f, (self.candidates, best, known))
            best.setdefault(k, f)
        for k, f in best.items():
            if k not in self.candidates:
                n = self.rules.rules[f.problem_code].persistence.n
                self.candidates[k] = Candidate(k, f.problem_code, ts, ts, deque(maxlen=n))
        hit_now: dict[str, Candidate] = {}
        for k, c in list(self.candidates.items()):
            if codes is not None and c.problem_code not in codes:
                continue
            if c.history and ts < c.history[-1][0]:
                c.history.clear()  # the clock went back (a file replayed): start over
            f = best.get(k)
            if f is not None:
                if c.hits() == 0:
                    c.first_seen = ts
                c.history.append((ts, True))
                c.last_hit, c.finding, c.score, c.box = ts, f, f.score, f.box
                hit_now[k] = c
            else:
                c.history.append((ts, False))
                if c.hits() == 0 and k not in keep:
                    del self.candidates[k]
        return hit_now

    def qualifies(self, c: Candidate, ts: datetime) -> bool:
        p = self.rules.rules[c.problem_code].persistence
        return c.hits() >= p.k and ts - _present_since(c) >= timedelta(minutes=p.minutes)

    def rule(self, c: Candidate) -> RuleSpec:
        return self.rules.rules[c.problem_code]


def _present_since(c: Candidate) -> datetime:
    """Since when the candidate's object has been there: its first hit, or later where the analyzer that
    found it knows better. Occupancy's `static_since` is when the object's spot last became occupied
    without a break; something that is at one spot in every other analysis only (a bottle put down and
    taken away again and again, goods on a belt) keeps a candidate alive with hits, but arrives anew each
    time, and must not count as standing there since its first hit."""
    since = c.finding.extras.get("static_since") if c.finding is not None else None
    if not isinstance(since, str):
        return c.first_seen
    try:
        return max(c.first_seen, datetime.fromisoformat(since))
    except (ValueError, TypeError):  # unparsable, or a naive time
        return c.first_seen


class Action(StrEnum):
    OPEN = "opened"
    RECUR = "recurred"
    PRESENT = "present"
    CLEAR = "cleared"


def decide(
    *,
    hit: bool,
    qualifies: bool,
    active_last_seen: datetime | None,
    last_cleared_at: datetime | None,
    ts: datetime,
    rule: RuleSpec,
    recur_window: timedelta,
    away: timedelta = timedelta(0),
) -> Action | None:
    """What happens to the incident at one key after one analysis.

    `away`: of the time since it was last seen, how much nobody looked (a patrol at other presets). Clearing
    counts only observed time without it: the problem was not seen gone, only not seen.
    """
    if active_last_seen is not None:
        if hit:
            return Action.PRESENT
        if ts - active_last_seen - away >= timedelta(minutes=rule.clear_minutes):
            return Action.CLEAR
        return None
    if not qualifies:
        return None
    if last_cleared_at is not None and timedelta(0) <= ts - last_cleared_at <= recur_window:
        return Action.RECUR
    return Action.OPEN
