"""What one frame says about one problem, without persistence: pure, no I/O."""

from __future__ import annotations

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
