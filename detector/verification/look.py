"""What one frame, or one patrol visit, says about one problem, without persistence: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from detector.rules.engine import CameraRules, Finding
from detector.types import Observations


def findings_of(rules: CameraRules, code: str, obs: Observations, ts: datetime) -> list[Finding]:
    """The findings of `code` in this frame: its outputs, in its zones, with the rule's score and size tests.

    The rule's schedule is left out: the centre asks about now, whatever hours the problem is watched.
    """
    rule = rules.rules[code]
    one = replace(rules, rules={code: rule.model_copy(update={"schedule": None})}, outputs={code: rules.outputs[code]})
    return one.findings(obs, ts)


#: A patrolling camera's 核实 answer comes from its visit at the preset, settled frames only: "present" as soon
#: as the problem's finding holds in VISIT_K of the visit's last VISIT_N analyses; "absent" once the visit has
#: given VISIT_N analyses without that. Why not the first frame: the stationary analyzers report an object only
#: once it stood in 3 of their last 5 analyses (occupancy's short-term median), so a pile left since the last
#: visit shows from the visit's third frame on; and one frame can hold a one-off finding. 3 of 5 is the same
#: majority again, over the visit: a pile there all along answers present at the visit's third frame, one left
#: since the last visit by its fifth to seventh; with the default cadence (1 s) and dwells of 10 s or more the
#: visit gives the VISIT_N frames well before it ends.
VISIT_K = 3
VISIT_N = 5


def visit_verdict(hits: Sequence[bool], *, over: bool) -> str | None:
    """What a visit's analyses so far (oldest first: did the problem's finding hold?) answer: "present",
    "absent", or None (wait for more). `over`: the visit ended (the patrol moved on) before VISIT_N analyses;
    the frames it gave answer by majority (present only if more than half held the finding)."""
    if sum(hits[-VISIT_N:]) >= VISIT_K:
        return "present"
    if len(hits) >= VISIT_N:
        return "absent"
    if over and hits:
        return "present" if 2 * sum(hits) > len(hits) else "absent"
    return None
