"""Zones written back into a camera file: what people wrote stays, a bad zone changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.camera_files import CameraFileError, ZonesInvalid, write_zones
from detector.config import load_config

CAMERAS = """\
# 幸福路 cameras — owned by 城管科
cameras:
  - id: east-1   # the east gate
    name: "幸福路东门"
    source:
      url: rtsp://10.0.0.9/stream   # main stream
    problems: ['09006']
    zones:
      - name: walk  # the pavement
        purpose: no_vending
        polygon: [[0, 0.5], [1, 0.5], [1, 0.8]]
  - id: west-1
    name: 西门
    source: {url: rtsp://10.0.0.10/stream}
    problems: ["09006"]   # only vending
    zones:
      - {name: road, purpose: road, polygon: [[0, 0], [1, 0], [1, 0.3]]}
"""
WEST = CAMERAS[CAMERAS.index("  - id: west-1") :]
GATE = {
    "name": "gate",
    "display_name": "东门口",
    "purpose": "no_parking",
    "polygon": [[0.1, 0.1], [0.4, 0.1], [0.25, 0.4]],
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "settings.yaml").write_text("log_level: INFO\n")
    (tmp_path / "cameras.yaml").write_text(CAMERAS, encoding="utf-8")
    return tmp_path


def test_new_zones_keep_comments_quotes_and_the_other_camera(folder: Path) -> None:
    walk = {"name": "walk", "purpose": "no_vending", "polygon": [[0.05, 0.5], [0.95, 0.5], [0.9, 0.812345]]}
    path, zones = write_zones(folder, "east-1", [walk, GATE])
    text = path.read_text(encoding="utf-8")
    assert path.name == "cameras.yaml"
    assert text.startswith("# 幸福路 cameras — owned by 城管科\ncameras:\n  - id: east-1   # the east gate\n")
    assert 'name: "幸福路东门"' in text and "url: rtsp://10.0.0.9/stream   # main stream" in text
    assert "- name: walk  # the pavement" in text  # a zone that keeps its name keeps its comment
    assert "display_name: 东门口" in text  # Chinese as written, not \\u escapes
    assert text.endswith(WEST)  # the other camera byte for byte
    loaded = load_config(folder)
    assert loaded.errors == []
    east = next(c for c in loaded.cameras if c.id == "east-1")
    assert [(z.name, z.display_name, z.purpose.value) for z in east.zones] == [
        ("walk", None, "no_vending"),
        ("gate", "东门口", "no_parking"),
    ]
    assert east.zones[0].polygon[2] == (0.9, 0.8123) and zones == east.zones


def test_a_camera_without_zones_gets_them_after_its_problems(folder: Path) -> None:
    text = CAMERAS.replace("    zones:\n      - {name: road, purpose: road, polygon: [[0, 0], [1, 0], [1, 0.3]]}\n", "")
    (folder / "cameras.yaml").write_text(text, encoding="utf-8")
    write_zones(folder, "west-1", [GATE])
    out = (folder / "cameras.yaml").read_text(encoding="utf-8")
    gate = "      - name: gate\n        display_name: 东门口\n        purpose: no_parking\n"
    polygon = "        polygon: [[0.1, 0.1], [0.4, 0.1], [0.25, 0.4]]\n"
    assert out.endswith(f'problems: ["09006"]   # only vending\n    zones:\n{gate}{polygon}')
    assert [z.name for z in load_config(folder).cameras[1].zones] == ["gate"]


def test_values_are_read_as_the_loader_reads_them(folder: Path) -> None:
    """The loader reads YAML 1.1: an unquoted 09006 is a problem code there (an integer in 1.2), and a
    zone named no must be quoted or it would load as false."""
    (folder / "cameras.yaml").write_text(CAMERAS.replace("problems: ['09006']", "problems:\n      - 09006"))
    write_zones(folder, "east-1", [{**GATE, "name": "no", "display_name": "yes"}])
    text = (folder / "cameras.yaml").read_text(encoding="utf-8")
    assert "      - 09006\n" in text and "name: 'no'" in text and "display_name: 'yes'" in text
    loaded = load_config(folder)
    assert loaded.errors == [] and loaded.cameras[0].zones[0].name == "no"


@pytest.mark.parametrize(
    ("zones", "field"),
    [
        ([{**GATE, "polygon": [[0.1, 0.1], [0.4, 0.1]]}], "zones.0.polygon"),
        ([{**GATE, "purpose": "parking"}], "zones.0.purpose"),
        ([{**GATE, "polygon": [[0.1, 0.1], [1.4, 0.1], [0.2, 0.2]]}], "zones.0.polygon.1.0"),
        ([GATE, {**GATE, "name": "东门"}], "zones.1.name"),
        ([{**GATE, "colour": "red"}], "zones.0.colour"),
        ([GATE, GATE], "zones"),  # the camera's own check: unique names
    ],
)
def test_a_bad_zone_is_refused_naming_the_field_and_nothing_is_written(folder: Path, zones: list, field: str) -> None:
    with pytest.raises(ZonesInvalid) as e:
        write_zones(folder, "east-1", zones)
    assert field in [f.field for f in e.value.errors], e.value.errors
    assert (folder / "cameras.yaml").read_text(encoding="utf-8") == CAMERAS


def test_an_unknown_camera_names_itself(folder: Path) -> None:
    with pytest.raises(CameraFileError, match="'north-9'"):
        write_zones(folder, "north-9", [GATE])
