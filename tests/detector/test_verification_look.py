"""A patrol visit's 核实 verdict (`look.visit_verdict`): 3 of the last 5 settled analyses present, 5 without absent,
a visit cut short by majority."""

from __future__ import annotations

import pytest

from detector.verification.look import VISIT_K, VISIT_N, visit_verdict

T, F = True, False


@pytest.mark.parametrize(
    ("hits", "over", "expected"),
    [
        ([], False, None),  # nothing seen yet
        ([], True, None),  # a visit without a usable frame answers nothing: the next one will
        ([F], False, None),  # one frame is not a visit
        ([T, T], False, None),  # not yet 3
        ([T, T, T], False, "present"),  # a pile there all along: the third frame decides
        ([F, F, T, T, T], False, "present"),  # a pile left since the last visit: the analyzer sees it from frame 3
        ([F, T, F, T, T], False, "present"),  # a passer hiding it once
        ([F, F, F, F, F], False, "absent"),
        ([T, F, F, T, F], False, "absent"),  # two one-off findings are no pile
        ([F, T, T], True, "present"),  # the patrol moved on after three frames: majority
        ([F, F, T, T], True, "absent"),  # half is not more than half
        ([T], True, "present"),
        ([F], True, "absent"),
    ],
)
def test_the_verdict_of_a_visit(hits: list[bool], over: bool, expected: str | None) -> None:
    assert visit_verdict(hits, over=over) == expected


def test_the_rule_is_a_majority_of_a_window_the_analyzers_need_to_report() -> None:
    assert 2 * VISIT_K > VISIT_N >= VISIT_K >= 3  # occupancy reports from an object's third analysis
