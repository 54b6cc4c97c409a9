"""A stationary object keeps its generic label unless a detector class names it."""

from __future__ import annotations

from datetime import UTC, datetime

from detector.config import Camera
from detector.rules.engine import CameraRules, object_names
from detector.rules.taxonomy import load_taxonomy
from detector.synthetic.street_scenes import NO_VENDING_ZONE
from detector.types import Observations

STALL = (0.55, 0.50, 0.68, 0.67)


def _rules() -> CameraRules:
    cam = Camera.model_validate(
        {
            "id": "c1",
            "name": "c1",
            "source": {"url": "x.mp4"},
            "zones": [{"name": "walk", "purpose": "no_vending", "polygon": [list(p) for p in NO_VENDING_ZONE]}],
            "problems": ["09006"],
        }
    )
    return CameraRules.build(cam, load_taxonomy(None))


def test_an_umbrella_over_the_stall_names_it_and_the_generic_label_stays_otherwise() -> None:
    obs = Observations.build(
        [STALL, STALL, (0.56, 0.50, 0.67, 0.56), (0.10, 0.10, 0.15, 0.20)],
        [0.8, 0.8, 0.7, 0.9],
        ["occupancy:stationary", "occupancy:vending", "detector:umbrella", "detector:car"],
    )
    assert object_names(obs) == ["detector:umbrella", "detector:umbrella", "detector:umbrella", "detector:car"]
    alone = obs[[True, True, False, False]]
    assert object_names(alone) == ["occupancy:stationary", "occupancy:vending"]

    findings = _rules().findings(obs, datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    assert {(f.problem_code, f.label) for f in findings} == {("09006", "detector:umbrella")}


def test_a_stationary_object_counts_as_a_stall_only_with_people_beside_it_or_when_nobody_measured() -> None:
    ts = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    alone = Observations.build([STALL], [0.8], ["occupancy:stationary"], [{"people": 1}])
    assert _rules().findings(alone, ts) == []  # measured: nobody lingers at it
    unmeasured = Observations.build([STALL], [0.8], ["occupancy:stationary"])
    assert [f.problem_code for f in _rules().findings(unmeasured, ts)] == ["09006"]  # cannot rule a vendor out
