"""Random sequences of status changes from every source, on a real SQLite database: the case
takes only the table's edges, a closed case changes only through reopen, and 核查 starts
only when a case enters 处置 (handled)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from detector.config import Settings
from detector.filing.case_flow import SOURCES, STATUSES, TERMINAL, TransitionRefused
from detector.filing.cases import CaseService
from detector.incidents.evidence import EvidenceStore
from detector.rules.taxonomy import load_taxonomy
from detector.store.db import Case, CaseHistory, Incident, open_database
from tests.api.conftest import CAMERA
from tests.support.builders import queue_cases

T0 = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)

step = st.one_of(
    st.tuples(
        st.sampled_from(SOURCES),
        st.sampled_from(STATUSES),
        st.one_of(st.none(), st.integers(0, 20).map(lambda m: T0 + timedelta(minutes=m))),  # the platform's time
    ),
    st.just(("reopen", None, None)),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    root: Path = tmp_path_factory.mktemp("flow")
    engine, sessions = open_database(f"sqlite:///{root / 'db.sqlite'}")
    store = EvidenceStore(root / "evidence")
    cases = CaseService(load_taxonomy(None), Settings(), store, {"c1": CAMERA})
    queue_cases(sessions, store, cases, 1)
    yield sessions, cases
    engine.dispose()


def _history(s, case: Case) -> int:
    return s.scalar(select(func.count()).select_from(CaseHistory).where(CaseHistory.case_id == case.id))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_every_sequence_keeps_the_lifecycle_invariants(world, steps) -> None:
    sessions, cases = world
    with sessions() as s:
        case = cases.create(s, s.scalars(select(Incident)).first())  # a fresh queued case per example
        s.flush()
        for source, status, at in steps:
            before, checking_since, rows = case.status, case.verify_started_at, _history(s, case)
            try:
                if source == "reopen":
                    back = cases.reopen(s, case, "复查")
                    assert before in TERMINAL and back not in TERMINAL
                    continue
                moved = cases.apply_status(s, case, status, source=source, at=at)
            except TransitionRefused:
                assert case.status == before and _history(s, case) == rows  # nothing written
                continue
            if moved:
                assert status in cases.flow.allowed(source, before), (source, before, status)
                assert before not in TERMINAL  # a closed case never changes but through reopen
            else:
                assert case.status == before
            if case.verify_started_at != checking_since and case.verification == "checking":
                assert moved and case.status == "handled"  # 核查 starts only from 处置
        # the history tells the same story: each applied row starts where the previous one ended
        applied = s.scalars(
            select(CaseHistory).where(CaseHistory.case_id == case.id, CaseHistory.stale.is_(False))
            .order_by(CaseHistory.id)
        ).all()  # fmt: skip
        for prev, row in pairwise(applied):
            assert row.from_status == prev.to_status
        assert applied[-1].to_status == case.status
        s.rollback()
