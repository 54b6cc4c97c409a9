"""The runtime's pins: each dependency below a major version we have not tested, and the
exact versions that passed in constraints.txt."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _requirements(name: str) -> list[str]:
    lines = (REPO / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "-r"))]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    unbounded = [r for r in _requirements("requirements.txt") if "<" not in r and "==" not in r]
    assert unbounded == []


def test_constraints_pin_every_direct_dependency() -> None:
    pinned = {_name(line) for line in _requirements("constraints.txt") if "==" in line}
    direct = {_name(r) for name in ("requirements.txt", "requirements-dev.txt", "requirements-train.txt")
              for r in _requirements(name)}  # fmt: skip
    assert direct - pinned == set()
