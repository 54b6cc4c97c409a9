"""The README's trainer walkthrough runs as written, on the sample data that ships with it.

Steps 1 and 2 (new class, data) are taken from the README's own text and run in a copy of
the project's layout, so a renamed file or a missing sample breaks this test, not a user.
(`from-reviews` needs a running system's database; tests/training/test_reviews.py covers it.)
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

BUNDLED_CLASSES = ["garbage", "garbage_bin", "overflow", "fire", "smoke", "signboard", "win_ad"]


def walkthrough_commands() -> list[list[str]]:
    """The gridsight commands of steps 1 and 2 of the README's walkthrough."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text[text.index("# 1. the problem class") : text.index("# 3. train")]
    commands = re.sub(r"\\\n\s*", " ", block).splitlines()
    return [shlex.split(line)[1:] for line in commands if line.startswith("gridsight ") and "from-reviews" not in line]


def test_the_walkthrough_keeps_the_bundled_classes_and_adds_the_sample_banners(tmp_path: Path) -> None:
    if not (REPO.parent / "shared" / "datasets" / "garbage").is_dir():
        raise AssertionError("../shared/datasets is missing: the walkthrough imports the bundled model's data")
    repo = tmp_path / "repo"  # the project's layout, with ../shared beside it as in a checkout
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    shutil.copytree(REPO / "camera_config", repo / "camera_config")
    (repo / "training" / "bundled").mkdir(parents=True)
    shutil.copy(REPO / "training" / "bundled" / "classes.yaml", repo / "training" / "bundled")
    (repo / "training" / "walkthrough").symlink_to(REPO / "training" / "walkthrough")

    commands = walkthrough_commands()
    assert [c[:3] for c in commands] == [
        ["train", "class", "add"],
        ["train", "dataset", "import"],
        ["train", "dataset", "import"],
    ]
    for args in commands:
        out = subprocess.run(
            [sys.executable, "-m", "detector.cli", *args], cwd=repo, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, f"gridsight {shlex.join(args)}:\n{out.stdout}\n{out.stderr}"

    data = repo / "var" / "datasets" / "mine"
    assert yaml.safe_load((data / "data.yaml").read_text())["names"] == [*BUNDLED_CLASSES, "hung_banner"]
    banner = len(BUNDLED_CLASSES)  # the new class comes after the bundled ones
    for split in ("train", "val"):
        labels = list((data / "labels" / split).glob("*.txt"))
        classes = {int(line.split()[0]) for p in labels for line in p.read_text().splitlines()}
        assert classes == set(range(len(BUNDLED_CLASSES) + 1)), f"{split}: classes {sorted(classes)}"
        assert any(p.name.startswith("banners") for p in labels), f"{split}: no sample banner image"
    sample = json.loads((REPO / "training" / "walkthrough" / "banners" / "banners.json").read_text())
    boxes = sum(
        line.startswith(f"{banner} ")
        for p in (data / "labels").glob("*/banners*.txt")
        for line in p.read_text().splitlines()
    )
    assert boxes == len(sample["annotations"])
