"""Importing YOLO, COCO and VOC datasets into one GridSight dataset, bad records included."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from training.datasets import ClassMap, DatasetError, import_dataset

CLASSES = ["garbage", "garbage_bin", "smoke"]


def jpeg(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = cv2.resize(np.random.default_rng(seed).integers(0, 255, (6, 8, 3), np.uint8), (w, h))
    assert cv2.imwrite(str(path), img)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def class_map(tmp_path: Path) -> ClassMap:
    mapping = {
        "classes": CLASSES,
        "map": {"litter": "garbage", "bin": "garbage_bin", "trash": "garbage", "person": None},
    }
    return ClassMap.load(write(tmp_path / "classes.yaml", yaml.safe_dump(mapping)))


def yolo_source(root: Path) -> Path:
    write(root / "data.yaml", yaml.safe_dump({"names": ["litter", "bin", "person"]}))
    jpeg(root / "images/train/a.jpg", seed=1)
    jpeg(root / "images/train/b.jpg", seed=2)
    jpeg(root / "images/train/x_jpg.rf.3fa9.jpg", seed=3)  # dots in the name (Roboflow exports)
    jpeg(root / "images/val/c.jpg", seed=4)
    write(root / "labels/train/a.txt", "0 0.5 0.5 0.2 0.2\n1 1.5 0.5 0.2 0.2\n\n2 0.2 0.2 0.1 0.1\n")
    write(root / "labels/train/b.txt", "7 0.5 0.5 0.1 0.1\n1 0.3 0.3 0.1 0.1\nbanana\n")
    write(root / "labels/train/x_jpg.rf.3fa9.txt", "0 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n")  # a segment
    write(root / "labels/val/c.txt", "1 0.5 0.5 0.4 0.4\n")
    write(root / "labels/train/ghost.txt", "0 0.5 0.5 0.1 0.1\n")  # no image
    return root


def coco_source(root: Path) -> Path:
    jpeg(root / "imgs/a/0001.jpg", 80, 60, seed=5)
    jpeg(root / "imgs/b/0001.jpg", 80, 60, seed=6)  # same name, other folder: must not collide
    coco = {
        "images": [
            {"id": 1, "file_name": "a/0001.jpg", "width": 80, "height": 60},
            {"id": 2, "file_name": "b/0001.jpg"},  # no size: read from the file
            {"id": 3, "file_name": "gone.jpg", "width": 80, "height": 60},
            {"id": 4},  # no file_name
        ],
        "categories": [{"id": 1, "name": "trash"}, {"id": 2, "name": "smoke"}, {"name": "no id"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"id": 11, "image_id": 99, "category_id": 1, "bbox": [10, 10, 20, 20]},
            {"id": 12, "image_id": 1, "category_id": 42, "bbox": [10, 10, 20, 20]},
            {"id": 13, "image_id": 2, "category_id": 2, "bbox": [200, 10, 20, 20]},
            {"id": 14, "image_id": 2, "category_id": 2, "bbox": [40, 20, 30, 30]},
            {"id": 15, "image_id": 2, "category_id": 2, "bbox": "oops"},
        ],
    }
    return write(root / "instances.json", json.dumps(coco))


VOC_OK = """<annotation>
  <filename>p.jpg</filename>
  <size><width>0</width><height>0</height></size>
  <object>
    <name>trash</name>
    <bndbox><xmin>4</xmin><ymin>4</ymin><xmax>30</xmax><ymax>30</ymax></bndbox>
  </object>
  <object>
    <name>smoke</name>
    <bndbox><xmin>10</xmin><ymin>10</ymin><xmax>500</xmax><ymax>40</ymax></bndbox>
  </object>
  <object>
    <name>person</name>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>
  </object>
</annotation>
"""


def voc_source(root: Path) -> Path:
    jpeg(root / "JPEGImages/p.jpg", seed=7)
    jpeg(root / "JPEGImages/q.jpg", seed=8)
    write(root / "Annotations/p.xml", VOC_OK)
    write(root / "Annotations/q.xml", "<annotation>\n  <filename>q.jpg</filename>\n  <object>\n</annotation>\n")
    write(root / "Annotations/r.xml", VOC_OK.replace("p.jpg", "missing.jpg"))
    write(root / "ImageSets/Main/train.txt", "p\n")
    write(root / "ImageSets/Main/val.txt", "q\nr\n")
    return root


def labels(out: Path, split: str, stem: str) -> list[str]:
    return (out / "labels" / split / f"{stem}.txt").read_text().splitlines()


def test_three_formats_merge_into_one_dataset_and_bad_records_are_reported(tmp_path: Path, class_map: ClassMap) -> None:
    out = tmp_path / "ds"
    yolo = import_dataset("yolo", yolo_source(tmp_path / "yolo"), out, class_map)
    coco = import_dataset("coco", coco_source(tmp_path / "coco"), out, class_map, images_root=tmp_path / "coco/imgs",
                          prefix="coco", val_fraction=0.0)  # fmt: skip
    voc = import_dataset("voc", voc_source(tmp_path / "voc"), out, class_map)

    # YOLO: 4 images kept; the outside box, the unknown id, the garbage line and the orphan label reported
    assert dict(yolo.images) == {"train": 3, "val": 1}
    assert dict(yolo.boxes["train"]) == {"garbage": 2, "garbage_bin": 1} and dict(yolo.boxes["val"]) == {
        "garbage_bin": 1
    }
    assert yolo.dropped == {"person": 1}
    src = tmp_path / "yolo/labels/train"
    assert yolo.problems == [
        f"{src}/a.txt:2: box outside the image: '1 1.5 0.5 0.2 0.2'",
        f"{src}/b.txt:1: unknown class id 7 (known: [0, 1, 2])",
        f"{src}/b.txt:3: not 'class cx cy w h' nor a segment: 'banana'",
        f"{src}/ghost.txt: label without an image",
    ]
    assert labels(out, "train", "yolo__a") == ["0 0.500000 0.500000 0.200000 0.200000"]  # person dropped
    assert labels(out, "train", "yolo__x_jpg.rf.3fa9") == ["0 0.200000 0.200000 0.200000 0.200000"]
    assert (out / "images/train/yolo__x_jpg.rf.3fa9.jpg").is_file()

    # COCO: two images (same file name, both kept), broken references reported by annotation id
    js = tmp_path / "coco/instances.json"
    assert dict(coco.images) == {"train": 2}
    assert dict(coco.boxes["train"]) == {"garbage": 1, "smoke": 1}
    assert sorted(coco.problems) == sorted([
        f"{js}: categories[2]: category without an id or a name",
        f"{js}: images[3]: image without an id or a file_name",
        f"{js}: annotation 11: image_id 99 is not in images",
        f"{js}: annotation 12: category_id 42 is not in categories",
        f"{js}: image 3: file not found: {tmp_path / 'coco/imgs/gone.jpg'}",
        f"{js}: annotation 13: box outside the image: [200, 10, 20, 20]",
        f"{js}: annotation 15: bbox is not [x, y, w, h]",
    ])  # fmt: skip
    names = sorted(p.name for p in (out / "images/train").glob("coco__*"))
    assert len(names) == 2 and names[0] == "coco__0001.jpg"
    assert {len(labels(out, "train", Path(n).stem)) for n in names} == {1}

    # VOC: p imported (size 0 in the XML: read from the image); q malformed, r without an image
    voc_dir = tmp_path / "voc/Annotations"
    assert dict(voc.images) == {"train": 1}
    assert dict(voc.boxes["train"]) == {"garbage": 1} and voc.dropped == {"person": 1}
    assert voc.problems[0].startswith(f"{voc_dir}/p.xml:8: object 'smoke': box outside the image")
    assert voc.problems[1].startswith(f"{voc_dir}/q.xml:4: not valid XML: mismatched tag")
    assert voc.problems[2] == f"{voc_dir}/r.xml: image not found: {tmp_path / 'voc/JPEGImages/missing.jpg'}"
    assert len(voc.problems) == 3
    [line] = labels(out, "train", "voc__p")
    cid, *box = line.split()
    assert cid == "0" and np.allclose([float(v) for v in box], [17 / 64, 17 / 48, 26 / 64, 26 / 48], atol=1e-5)

    # one dataset: one class list, every image with its label file, one report per source
    meta = yaml.safe_load((out / "data.yaml").read_text())
    assert meta["names"] == CLASSES and meta["train"] == "images/train"
    for split in ("train", "val"):
        imgs = {p.stem for p in (out / "images" / split).iterdir()}
        assert imgs == {p.stem for p in (out / "labels" / split).iterdir()}
    assert len(list((out / "images/train").iterdir())) == 3 + 2 + 1
    report = json.loads((out / "import_report.json").read_text())
    assert set(report) == {"yolo", "coco", "voc"} and report["coco"]["images"] == {"train": 2}
    assert len(report["yolo"]["problems"]) == 4


def test_a_dataset_with_another_class_list_is_refused(tmp_path: Path, class_map: ClassMap) -> None:
    out = tmp_path / "ds"
    import_dataset("yolo", yolo_source(tmp_path / "yolo"), out, class_map)
    other = ClassMap(["garbage"], {})
    with pytest.raises(DatasetError, match="holds classes"):
        import_dataset("voc", voc_source(tmp_path / "voc"), out, other)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda root: write(root / "data.yaml", "names: [a]\n"), "no images folder"),
        (lambda root: write(root / "data.yaml", "nothing: here\n"), "names: expected"),
        (lambda root: write(root / "data.yaml", "names: {a: x}\n"), "class ids must be integers"),
    ],
)
def test_unusable_yolo_sources_are_refused_as_a_whole(tmp_path: Path, class_map: ClassMap, make, match: str) -> None:
    make(tmp_path / "src")
    with pytest.raises(DatasetError, match=match):
        import_dataset("yolo", tmp_path / "src", tmp_path / "ds", class_map)


def test_repeat_lists_images_of_a_rare_class_several_times(tmp_path: Path, class_map: ClassMap) -> None:
    from training.train import repeat_classes

    src = tmp_path / "src"
    labels = {"a": "0 .5 .5 .2 .2\n", "b": "1 .5 .5 .2 .2\n0 .2 .2 .1 .1\n", "c": "1 .5 .5 .2 .2\n", "d": ""}
    for stem, lines in labels.items():
        jpeg(src / "images" / "train" / f"{stem}.jpg")
        write(src / "labels" / "train" / f"{stem}.txt", lines)
    jpeg(src / "images" / "valid" / "v.jpg")
    write(src / "labels" / "valid" / "v.txt", "0 .5 .5 .2 .2\n")
    write(src / "data.yaml", yaml.safe_dump({"names": ["garbage", "garbage_bin"]}))
    ds = tmp_path / "ds"
    import_dataset("yolo", src, ds, class_map, prefix="s")
    run = tmp_path / "run"
    run.mkdir()

    data = yaml.safe_load(repeat_classes(ds / "data.yaml", {"garbage": 3, "garbage_bin": 2}, run).read_text())
    listed = [Path(p).stem for p in Path(data["train"]).read_text().splitlines()]
    assert sorted(listed) == ["s__a"] * 3 + ["s__b"] * 3 + ["s__c"] * 2 + ["s__d"]  # the largest count wins
    assert Path(data["val"]) == ds / "images" / "val" and data["names"] == CLASSES
    with pytest.raises(ValueError, match="'litter' is not a class"):
        repeat_classes(ds / "data.yaml", {"litter": 2}, run)


def test_an_augmented_export_gives_one_copy_of_each_photo_split_by_photo(tmp_path: Path, class_map: ClassMap) -> None:
    # Roboflow's layout (<split>/images): photo p1 three times in train and once, unaugmented, in valid
    src = tmp_path / "export"
    write(src / "data.yaml", yaml.safe_dump({"names": ["trash", "bin"]}))
    for split, name, label in [
        ("train", "p1_jpg.rf.aa", "0 0.5 0.5 0.2 0.2\n"),
        ("train", "p1_jpg.rf.bb", "0 0.4 0.5 0.2 0.2\n"),
        ("train", "p1_jpg.rf.cc", "0 0.6 0.5 0.2 0.2\n"),
        ("valid", "p1_jpg.rf.dd", "1 0.5 0.5 0.3 0.3\n"),
        ("train", "p2_png.rf.ee", "0 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n"),
        ("test", "p3_jpg.rf.ff", ""),
    ]:
        jpeg(src / split / "images" / f"{name}.jpg", seed=len(name))
        write(src / split / "labels" / f"{name}.txt", label)

    out = tmp_path / "ds"
    all_copies = import_dataset("yolo", src, tmp_path / "all", class_map, prefix="rf")
    assert sum(all_copies.images.values()) == 6 and not all_copies.problems  # the layout alone is read as it is
    report = import_dataset("yolo", src, out, class_map, prefix="rf", per_photo=True, val_fraction=0.5)
    kept = sorted(p.name for p in out.glob("images/*/*.jpg"))
    assert kept == ["rf__p1_jpg.rf.dd.jpg", "rf__p2_png.rf.ee.jpg", "rf__p3_jpg.rf.ff.jpg"]  # valid's copy of p1
    assert dict(report.boxes["train"]) | dict(report.boxes["val"]) == {"garbage_bin": 1, "garbage": 1}
    # the split follows the photo, whatever split the export put a copy in: the same on every import
    again = import_dataset("yolo", src, tmp_path / "again", class_map, prefix="rf", per_photo=True, val_fraction=0.5)
    assert dict(again.images) == dict(report.images)
    splits = {p.name: p.parent.name for p in out.glob("images/*/*.jpg")}
    assert {p.name: p.parent.name for p in (tmp_path / "again").glob("images/*/*.jpg")} == splits
