"""`gridsight train class add`: taxonomy entry + detector class, checked before anything is written."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from detector.cli import main
from detector.config import load_config
from detector.rules.engine import CameraRules
from detector.rules.taxonomy import BUNDLED, load_taxonomy
from detector.types import Observations
from tests.conftest import REPO, write_config
from training.datasets import ClassMap

BUNDLED_CLASSES = REPO / "training/bundled/classes.yaml"
WALL = [[0.0, 0.0], [1.0, 0.0], [1.0, 0.5], [0.0, 0.5]]


def camera(cam_id: str, problems: list[str]) -> dict:
    return {
        "id": cam_id,
        "name": f"测试 {cam_id}",
        "source": {"url": "/x.mp4"},
        "zones": [{"name": "facade", "purpose": "wall", "polygon": WALL}],
        "problems": problems,
        "location": {"division_code": "110107", "grid_code": "110107001002003"},
    }


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Path, Path]:
    cfg = write_config(tmp_path, [camera("c1", ["06010"])])
    settings = cfg / "settings.yaml"
    settings.write_text("# our site\n" + settings.read_text() + "retention_days: 30  # keep a month\n")
    classes = tmp_path / "classes.yaml"
    shutil.copyfile(BUNDLED_CLASSES, classes)
    return cfg, classes


def add(cfg: Path | str, classes: Path | str, *extra: str, code: str = "07010", cls: str = "hung_banner") -> int:
    return main([
        "train", "class", "add", "--code", code, "--name-zh", "违规悬挂横幅", "--name-en", "Hung banner",
        "--detector-class", cls, "--zones", "wall,pole", "--department", "城市管理综合执法局",
        "--config", str(cfg), "--classes", str(classes), *extra,
    ])  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_class_add_end_to_end(deployment: tuple[Path, Path], capsys) -> None:
    cfg, classes = deployment
    settings_before = yaml.safe_load((cfg / "settings.yaml").read_text())
    assert add(cfg, classes, "--legacy-code", "0299", "--filing-condition", "在建筑物上悬挂横幅") == 0
    assert "added problem 07010" in capsys.readouterr().out

    # the deployment now has its own taxonomy: the bundled one (comments and all) plus the entry
    own = cfg / "taxonomy" / "taxonomy.yaml"
    text = own.read_text(encoding="utf-8")
    assert text.startswith(BUNDLED.read_text(encoding="utf-8"))
    problem = load_taxonomy(own)["07010"]
    assert problem.outputs == ["detector:hung_banner"] and problem.legacy_code == "0299"
    assert problem.rule.zones == ["wall", "pole"] and problem.rule.anchor == "overlap"
    assert problem.filing.mode == "review" and problem.department.name == "城市管理综合执法局"
    assert problem.filing_condition == "在建筑物上悬挂横幅"
    assert [t.code for t in load_taxonomy(own)][:-1] == [t.code for t in load_taxonomy(None)]

    # settings.yaml points at it; everything else in it, comments included, is kept
    settings_text = (cfg / "settings.yaml").read_text()
    assert settings_text.startswith("# our site\n") and "retention_days: 30  # keep a month" in settings_text
    assert yaml.safe_load(settings_text) == {**settings_before, "taxonomy": "taxonomy/taxonomy.yaml"}  # config-relative

    # the class mapping lists the class last (existing ids unchanged), comments kept
    mapped = ClassMap.load(classes)
    bundled = ClassMap.load(BUNDLED_CLASSES)
    assert mapped.classes == [*bundled.classes, "hung_banner"] and mapped.rename == bundled.rename
    assert classes.read_text().startswith(BUNDLED_CLASSES.read_text().splitlines()[0])

    # the runtime's loader sees the new problem, and a camera may watch it
    loaded = load_config(cfg)
    assert loaded.errors == [] and "07010" in loaded.taxonomy
    (cfg / "wall.yaml").write_text(yaml.safe_dump({"cameras": [camera("c2", ["07010"])]}, allow_unicode=True))
    loaded = load_config(cfg)
    assert loaded.errors == []
    [cam] = [c for c in loaded.cameras if c.id == "c2"]
    rules = CameraRules.build(cam, loaded.taxonomy)
    obs = Observations.build([(0.2, 0.1, 0.4, 0.3), (0.2, 0.7, 0.4, 0.9)], [0.9, 0.9], ["detector:hung_banner"] * 2)
    [finding] = rules.findings(obs, datetime(2026, 3, 6, tzinfo=UTC))  # the one on the wall
    assert finding.problem_code == "07010" and finding.zone == "facade"

    # a second class goes into the same own taxonomy; a class already listed is not added twice
    assert add(cfg, classes, code="07011", cls="hung_banner") == 0
    assert "already lists hung_banner" in capsys.readouterr().out
    assert [t.code for t in load_taxonomy(own)][-2:] == ["07010", "07011"]
    assert ClassMap.load(classes).classes.count("hung_banner") == 1
    assert yaml.safe_load((cfg / "settings.yaml").read_text())["taxonomy"] == "taxonomy/taxonomy.yaml"
    assert load_config(cfg).errors == []


@pytest.mark.parametrize(
    ("extra", "code", "cls", "message"),
    [
        ((), "06010", "hung_banner", "--code: 06010 is already in"),
        ((), "12345", "hung_banner", "--code: String should match pattern"),
        ((), "0701", "hung_banner", "--code: String should match pattern"),
        (("--zones", "wall,roof"), "07010", "hung_banner", "--zones: unknown zone purpose(s) ['roof']"),
        ((), "07010", "Hung Banner", "--detector-class: 'Hung Banner' is not a class name"),
        (("--name-zh", "横" * 31), "07010", "hung_banner", "--name-zh: String should have at most 30 characters"),
        (("--persistence", "5/3/1"), "07010", "hung_banner", "--persistence: Value error, k (5) must not exceed n"),
        (("--department-code", "bad"), "07010", "hung_banner", "--department-code: String should match pattern"),
        (("--time-limit", "4 fortnights"), "07010", "hung_banner", "--time-limit: unit must be one of"),
    ],
)
def test_bad_values_name_the_option_and_write_nothing(
    deployment: tuple[Path, Path], tmp_path: Path, capsys, extra: tuple[str, ...], code: str, cls: str, message: str
) -> None:
    cfg, classes = deployment
    before = snapshot(tmp_path)
    assert add(cfg, classes, *extra, code=code, cls=cls) == 1
    err = capsys.readouterr().err
    assert err.startswith("nothing written: ") and message in err, err
    assert snapshot(tmp_path) == before


def test_a_duplicate_in_the_deployments_own_taxonomy_is_refused(deployment: tuple[Path, Path], tmp_path: Path, capsys):
    cfg, classes = deployment
    assert add(cfg, classes) == 0
    before = snapshot(tmp_path)
    assert add(cfg, classes, cls="other_banner") == 1
    assert "--code: 07010 is already in" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_relative_config_and_no_settings_file(tmp_path: Path, monkeypatch) -> None:
    cfg = tmp_path / "site"
    cfg.mkdir()
    (cfg / "cams.yaml").write_text(yaml.safe_dump({"cameras": [camera("c1", ["06010"])]}))
    shutil.copyfile(BUNDLED_CLASSES, tmp_path / "classes.yaml")
    monkeypatch.chdir(tmp_path)
    assert add("site", "classes.yaml", "--zones", "", "--anchor", "bottom_center") == 0
    assert yaml.safe_load((cfg / "settings.yaml").read_text()) == {
        "taxonomy": "taxonomy/taxonomy.yaml"
    }  # relative to the config folder
    loaded = load_config(Path("site"))
    assert loaded.errors == [] and loaded.taxonomy["07010"].rule.zones == []


def test_a_leftover_copy_is_not_overwritten(deployment: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    cfg, classes = deployment
    (cfg / "taxonomy").mkdir()
    (cfg / "taxonomy" / "taxonomy.yaml").write_text("problems: []\n")
    before = snapshot(tmp_path)
    assert add(cfg, classes) == 1
    assert "does not set taxonomy" in capsys.readouterr().err
    assert snapshot(tmp_path) == before
