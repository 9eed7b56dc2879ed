"""The slot ceiling on a hand-built photo whose outcome is worked out by hand: which instances a
grid of 1 or 4 slots keeps (data/assign.py's rules), and the AP pycocotools' 101-point
interpolation gives those perfect predictions."""
import json
import os
import subprocess
import sys

import pytest

from fassst.build_paths import REPO_ROOT
from fassst.evaluation.slot_ceiling import slot_ceiling

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def square(x, y, side):
    return [x, y, x + side, y, x + side, y + side, x, y + side]


@pytest.fixture
def photo(tmp_path):
    """One 64 x 64 photo: a large cat (centre 16, 16), a small dog inside the same 32 px cell
    (centre 14, 14), a second cat in the far cell (centre 48, 48) and a crowd region."""
    objects = [(1, 4, 4, 24, 0), (2, 10, 10, 8, 0), (1, 40, 40, 16, 0), (2, 40, 4, 12, 1)]
    doc = {"images": [{"id": 1, "file_name": "a.png", "height": 64, "width": 64}],
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
           "annotations": [{"id": k + 1, "image_id": 1, "category_id": c, "iscrowd": crowd,
                            "segmentation": [square(x, y, s)], "bbox": [x, y, s, s],
                            "area": s * s} for k, (c, x, y, s, crowd) in enumerate(objects)]}
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_one_slot_keeps_the_largest_and_scores_what_it_misses(photo):
    got = slot_ceiling(photo, 64, 1)
    assert (got["instances"], got["kept"], got["dropped"], got["unusable"]) == (3, 1, 2, 0)
    # cat: one of two found at precision 1 -> recall thresholds 0.00 .. 0.50 (51 of 101); dog: 0
    cat = 100 * 51 / 101
    assert got["segm"]["per_category_AP50"]["cat"] == pytest.approx(cat)
    assert got["segm"]["per_category_AP50"]["dog"] == 0.0
    assert got["segm"]["AP50"] == pytest.approx(cat / 2)
    assert got["bbox"]["AP50"] == pytest.approx(cat / 2)


def test_four_slots_move_the_dog_to_a_neighbour_and_keep_all(photo):
    got = slot_ceiling(photo, 64, 4)
    assert (got["kept"], got["dropped"]) == (3, 0)
    assert got["segm"]["AP"] == pytest.approx(100.0)
    assert got["bbox"]["AP50"] == pytest.approx(100.0)


def test_an_annotation_training_cannot_use_is_a_miss(photo, tmp_path):
    """A dog under 1 px wide: the data set drops it (data/coco_dataset.py), COCOeval still
    counts it, so the dogs score one of two."""
    doc = json.loads(open(photo).read())
    doc["annotations"].append({"id": 9, "image_id": 1, "category_id": 2, "iscrowd": 0,
                               "segmentation": [[50, 4, 50.5, 4, 50.5, 20, 50, 20]],
                               "bbox": [50, 4, 0.5, 16], "area": 8})
    thin = tmp_path / "thin.json"
    thin.write_text(json.dumps(doc))
    got = slot_ceiling(str(thin), 64, 4)
    assert (got["instances"], got["kept"], got["dropped"], got["unusable"]) == (4, 3, 0, 1)
    assert got["segm"]["per_category_AP50"]["dog"] == pytest.approx(100 * 51 / 101)
    assert got["segm"]["per_category_AP50"]["cat"] == pytest.approx(100.0)


def test_script_prints_a_row_per_slot_count_and_refuses_a_non_square(photo):
    script = os.path.join(REPO_ROOT, "scripts", "slot_ceiling.py")
    done = subprocess.run([sys.executable, script, "--ann", photo, "--size", "64", "--slots", "1",
                           "--slots", "4", "--class", "dog"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 1 ") or
            line.startswith("| 4 ")]
    assert rows == ["| 1 | 1 x 1 | 3 | 1 | 2 | 0 | 25.2 | 25.2 | 25.2 | 0.0 |",
                    "| 4 | 2 x 2 | 3 | 3 | 0 | 0 | 100.0 | 100.0 | 100.0 | 100.0 |"]
    bad = subprocess.run([sys.executable, script, "--ann", photo, "--slots", "12"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert [line for line in bad.stderr.splitlines() if "error:" in line] == [
        "slot_ceiling.py: error: argument --slots: num_slots must be a square "
        "(16, 25, 36, 49, 64, 81), got 12"]
