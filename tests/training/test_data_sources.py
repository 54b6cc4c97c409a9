"""`python -m training.sources`: a labelled set written from a git mirror at the catalogue's commit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from training.sources import entry, extract


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_a_set_is_written_as_it_was_at_its_commit_and_an_eval_only_set_says_so(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "data" / "train" / "images").mkdir(parents=True)
    (work / "data" / "train" / "images" / "a_jpg.rf.1.jpg").write_bytes(b"\xff\xd8 first")
    (work / "data" / "data.yaml").write_text("names: [bag]\n")
    (work / "README.md").write_text("not part of the set\n")
    git(work, "init", "-q")
    git(work, "add", ".")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    commit = git(work, "rev-parse", "HEAD")
    (work / "data" / "train" / "images" / "a_jpg.rf.1.jpg").write_bytes(b"changed later")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "two")
    mirrors = tmp_path / "mirrors"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / "someone+bags" / "repo")], check=True)

    src = {"name": "bags", "repo": "someone/bags", "commit": commit, "path": "data", "use": "eval", "licence": "none"}
    out = tmp_path / "out"
    assert extract(src, mirrors / "someone+bags" / "repo", out) == (2, 0)
    assert (out / "train" / "images" / "a_jpg.rf.1.jpg").read_bytes() == b"\xff\xd8 first"  # the commit's bytes
    assert not (out / "README.md").exists()

    catalogue = tmp_path / "sources.yaml"
    catalogue.write_text(yaml.safe_dump({"sources": [src]}))
    assert entry("bags", catalogue) == src
    # the command reads the project's own catalogue, and names what it knows
    ran = subprocess.run([sys.executable, "-m", "training.sources", "nothing", "--mirrors", str(mirrors)],
                         capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1 and "nothing: not in sources.yaml (known: woosong, maltese-bags)" in ran.stderr
