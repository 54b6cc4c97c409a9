"""The case lifecycle as data: which source may move a case from which status to which.

The table is `case_flow.yaml` beside this module, plus the edges a city adds in its config
(`filing.transitions`). Everything else is refused, so a closed case cannot silently reopen
and spoil the month's disposal rate; reopening is its own, audited action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

#: platform statuses GridSight understands (the contract's vocabulary, docs/platform-api.md)
STATUSES = ("accepted", "filed", "dispatched", "handled", "verified", "closed", "voided")
#: a case's statuses: GridSight's own `queued` (not sent yet), then the platform's
CASE_STATUSES = ("queued", *STATUSES)
TERMINAL = frozenset({"closed", "voided"})
#: who moves a case: the filing receipt, status sync, callbacks, operators, GridSight's 核查
SOURCES = ("platform", "poll", "callback", "operator", "verification")
FLOW_FILE = Path(__file__).with_name("case_flow.yaml")

Edges = Mapping[str, Mapping[str, list[str]]]


class TransitionRefused(ValueError):
    """A status change the flow does not allow; the message names both statuses."""

    def __init__(self, message: str, current: str, requested: str) -> None:
        super().__init__(message)
        self.current, self.requested = current, requested

    @classmethod
    def edge(
        cls, case_id: int, current: str, requested: str, source: str, allowed: frozenset[str]
    ) -> TransitionRefused:
        options = ", ".join(s for s in CASE_STATUSES if s in allowed) or "none"
        hint = "; a closed or voided case changes only through reopen (admins)" if current in TERMINAL else ""
        return cls(
            f"case {case_id} is {current!r}: {source} may not move it to {requested!r} "
            f"(allowed from {current!r}: {options}){hint}",
            current,
            requested,
        )


def check_edges(edges: Edges, where: str = "transitions") -> Edges:
    """`edges` if every source and status is known; ValueError naming the bad key otherwise."""
    for source, table in edges.items():
        if source not in SOURCES:
            raise ValueError(f"{where}: unknown source {source!r}; expected one of {', '.join(SOURCES)}")
        for old, new in table.items():
            for status in (old, *new):
                if status not in CASE_STATUSES:
                    raise ValueError(
                        f"{where}.{source}.{old}: unknown status {status!r}; expected one of {', '.join(CASE_STATUSES)}"
                    )
            if old in TERMINAL:
                raise ValueError(f"{where}.{source}.{old}: a closed or voided case changes only through reopen")
    return edges


@dataclass(frozen=True)
class CaseFlow:
    edges: Mapping[str, Mapping[str, frozenset[str]]]

    @classmethod
    def load(cls, extra: Edges | None = None) -> CaseFlow:
        """The bundled table with `extra` (a city's own edges) added."""
        merged: dict[str, dict[str, set[str]]] = {}
        for table in (_bundled(), extra or {}):
            for source, rows in check_edges(table).items():
                for old, new in rows.items():
                    merged.setdefault(source, {}).setdefault(old, set()).update(new)
        return cls({src: {old: frozenset(new) for old, new in rows.items()} for src, rows in merged.items()})

    def allowed(self, source: str, current: str) -> frozenset[str]:
        return self.edges.get(source, {}).get(current, frozenset())

    def check(self, case_id: int, source: str, current: str, requested: str) -> None:
        """Raises TransitionRefused unless `source` may move the case from `current` to `requested`."""
        allowed = self.allowed(source, current)
        if requested not in allowed:
            raise TransitionRefused.edge(case_id, current, requested, source, allowed)


@cache
def _bundled() -> Edges:
    return check_edges(yaml.safe_load(FLOW_FILE.read_text(encoding="utf-8"))["transitions"], FLOW_FILE.name)
