"""`gridsight train cross-source` on a tiny dataset of two sources, as a trainer runs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.shapes import make_shapes_dataset
from tests.training.test_loop import gs

pytestmark = [pytest.mark.training, pytest.mark.slow]
pytest.importorskip("ultralytics")


def test_each_source_is_held_out_and_scored_beside_the_in_domain_model(tmp_path: Path) -> None:
    mapping = tmp_path / "classes.yaml"
    mapping.write_text(yaml.safe_dump({"classes": ["garbage", "overflow"], "map": {"square": "garbage", "disc": None}}))
    ds = tmp_path / "dataset"
    for name, seed in (("street", 1), ("yard", 2)):
        src = make_shapes_dataset(tmp_path / name, 24, 8, seed=seed).parent
        gs("train", "dataset", "import", "--format", "yolo", "--source", src, "--prefix", name,
           "--classes", mapping, "--out", ds)  # fmt: skip
    # a third source with a class no other source has: listed, not scored as zero
    only = make_shapes_dataset(tmp_path / "bins", 12, 6, seed=3).parent
    solo = tmp_path / "solo.yaml"
    solo.write_text(yaml.safe_dump({"classes": ["garbage", "overflow"], "map": {"square": None, "disc": "overflow"}}))
    gs("train", "dataset", "import", "--format", "yolo", "--source", only, "--prefix", "bins",
       "--classes", solo, "--out", ds)  # fmt: skip

    runs = tmp_path / "loso"
    table = gs("train", "cross-source", "--data", ds / "data.yaml", "--runs", runs, "--imgsz", 96, "--epochs", 2,
               "--batch", 8, "--close-mosaic", 0, "--width", 160, "--height", 96,
               "--yolo-config", tmp_path / "yolo")  # fmt: skip
    lines = [line for line in table.splitlines() if line.startswith("|")]  # ultralytics prints its own lines too
    rows = [line.split("|")[1:-1] for line in lines[2:]]
    cells = {(r[0].strip(), r[2].strip()): [c.strip() for c in r] for r in rows}
    assert set(cells) == {("street", "garbage"), ("yard", "garbage"), ("bins", "overflow")}, table
    for source in ("street", "yard"):
        _, images, _, boxes, ins, cross, drop = cells[(source, "garbage")]
        assert int(images) > 0 and int(boxes) > 0
        assert float(drop) == pytest.approx(float(ins) - float(cross), abs=0.002)
    assert cells[("bins", "overflow")][-1] == "no other source has it"
    # one model on all sources and one per held-out source that others can stand in for, each on what it should be
    trained = {p.parent.name: p.read_text().splitlines() for p in runs.glob("*/train.txt")}
    assert set(trained) == {"all", "without-street", "without-yard"}  # nothing of bins is learnt elsewhere
    assert not any("street__" in line for line in trained["without-street"])
    assert any("street__" in line for line in trained["without-yard"])
    only_in_all = set(trained["all"]) - set(trained["without-street"])
    assert only_in_all and all(Path(line).name.startswith("street__") for line in only_in_all)

    # a model older than a source never saw it: given with --without, nothing is trained for that source
    given = [f"--without={s}={runs / f'without-{s}' / 'fp32'}" for s in ("street", "yard")]
    again = gs("train", "cross-source", "--data", ds / "data.yaml", "--runs", tmp_path / "given",
               "--in-domain", runs / "all" / "fp32", *given, "--yolo-config", tmp_path / "yolo")  # fmt: skip
    assert [line for line in again.splitlines() if line.startswith("|")] == lines
    assert f"without street: {runs / 'without-street' / 'fp32'}" in again
    assert not list((tmp_path / "given").glob("*/weights"))
