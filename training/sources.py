"""Labelled public sets beyond ../shared: taken from a git mirror at the commit `sources.yaml` names.

    python -m training.sources NAME [--mirrors /work/.mirror] [--out var/sources]

Writes the set's folder as it is in the repository at that commit to `<out>/<NAME>` and prints
the import command that adds it to a training dataset (`use: train`) or says that it is for
evaluation only. Files the mirror lacks (too large for a snapshot) are skipped and counted.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

CATALOGUE = Path(__file__).with_name("sources.yaml")
MIRRORS = Path("/work/.mirror")  # where the tool library's fetch leaves git mirrors: <owner>+<name>/repo


def entry(name: str, catalogue: Path = CATALOGUE) -> dict:
    sources = {s["name"]: s for s in yaml.safe_load(catalogue.read_text(encoding="utf-8"))["sources"]}
    if name not in sources:
        raise KeyError(f"{name}: not in {catalogue.name} (known: {', '.join(sources)})")
    return sources[name]


def _git(mirror: Path) -> list[str]:
    return [shutil.which("git") or "git", "-C", str(mirror)]  # a trainer's own mirror and catalogue


def git_file(mirror: Path, commit: str, path: str) -> bytes:
    """One file of the git directory `mirror` as it was at `commit`."""
    return subprocess.run([*_git(mirror), "show", f"{commit}:{path}"], check=True, capture_output=True).stdout  # noqa: S603


def extract(src: dict, mirror: Path, out: Path) -> tuple[int, int]:
    """Writes `src['path']` at `src['commit']` from the git directory `mirror` to `out`; returns
    (files written, files missing from the mirror)."""
    git = _git(mirror)
    listing = subprocess.run([*git, "ls-tree", "-r", "-z", src["commit"], "--", src["path"]],  # noqa: S603
                             check=True, capture_output=True).stdout  # fmt: skip
    blobs = [(meta.split()[2], path) for meta, path in (e.split(b"\t", 1) for e in listing.split(b"\0") if e)
             if meta.split()[1] == b"blob"]  # fmt: skip
    if not blobs:
        raise FileNotFoundError(f"{mirror}: nothing at {src['commit']}:{src['path']}")
    cat = subprocess.Popen([*git, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # noqa: S603
    assert cat.stdin is not None and cat.stdout is not None
    written = missing = 0
    prefix = len(src["path"].rstrip("/")) + 1
    for sha, path in blobs:
        cat.stdin.write(sha + b"\n")
        cat.stdin.flush()
        header = cat.stdout.readline().split()
        if header[1] == b"missing":
            missing += 1
            continue
        data = cat.stdout.read(int(header[2]) + 1)[:-1]  # the object, then a newline
        dest = out / path.decode()[prefix:]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        written += 1
    cat.stdin.close()
    cat.wait()
    return written, missing


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name")
    ap.add_argument("--mirrors", type=Path, default=MIRRORS, help="folder of git mirrors")
    ap.add_argument("--out", type=Path, default=Path("var/sources"))
    args = ap.parse_args()
    try:
        src = entry(args.name)
        mirror = args.mirrors / src["repo"].replace("/", "+") / "repo"
        written, missing = extract(src, mirror, args.out / args.name)
    except (KeyError, FileNotFoundError, subprocess.CalledProcessError) as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{args.out / args.name}: {written} files ({missing} missing from the mirror); licence {src['licence']}")
    if src["use"] != "train":
        print("evaluation only: never import it into a training dataset")
        return 0
    mapping = " ".join(f"{k} → {v}" for k, v in src["classes"].items())
    print(f"classes: {mapping} (training/bundled/classes.yaml maps them)\nimport: gridsight train dataset import "
          f"--format yolo --source {args.out / args.name} --prefix {args.name} {src['import']} "
          f"--classes training/bundled/classes.yaml --out DATASET")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
