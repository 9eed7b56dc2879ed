"""COCOEvaluator on real annotations (labelme's VOC example: 3 images, 12 instances), checked
against pycocotools' COCOeval run directly on hand-built results lists, and against AP values
reasoned out from the 101-point interpolated precision.
"""
import contextlib
import io
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fassst.build_paths import REPO_ROOT
from fassst.datasets.sample_data import LABELME
from fassst.evaluation import report
from fassst.evaluation.coco_evaluator import TABLE_METRICS, COCOEvaluator, load_coco_gt
from fassst.registry import fetch_member

# pycocotools 2.0.11's Cython masks under NumPy 2 (inside its own decode): not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
# pycocotools' recall thresholds (Params.recThrs): AP is the mean interpolated precision there.
REC_THRS = np.linspace(0.0, 1.0, 101)
# labelme's own COCO export of its 3 PASCAL VOC 2011 example photos: 12 hand-drawn instances
# (person, bottle, bus, car, chair, sofa), polygons, category 0 "_background_", ids from 0.
LABELME_COCO = "labelme-6.3.1/examples/instance_segmentation/data_dataset_coco/annotations.json"
# Annotation ids in the labelme json (before load_coco_gt shifts them by 1).
FIRST_PERSON, CAR, CHAIR = 0, 5, 9


def labelme_annotations():
    """Path of that json, from the pinned labelme sdist (fetched and cached on first use)."""
    return fetch_member(LABELME, LABELME_COCO)


@pytest.fixture(scope="module")
def gt():
    with pytest.warns(UserWarning, match="annotation ids <= 0"):
        return load_coco_gt(labelme_annotations())


@pytest.fixture(scope="module")
def cats(gt):
    return sorted(gt.getCatIds())  # the evaluator's default contiguous mapping


def gt_objects(gt, perturb=()):
    """[(image_id, category_id, mask (H, W) bool, [x, y, w, h], score)] from the ground truth,
    perturbed: "drop" leaves out the first person, "shift" moves the car's mask and box 8 px
    right, "wrong_class" labels the chair as a sofa. Scores are distinct, falling with the id."""
    sofa = gt.getCatIds(catNms=["sofa"])[0]
    objs = []
    for ann in sorted(gt.dataset["annotations"], key=lambda a: a["id"]):
        orig_id = ann["id"] - 1
        if "drop" in perturb and orig_id == FIRST_PERSON:
            continue
        mask = gt.annToMask(ann).astype(bool)
        box = list(ann["bbox"])
        cat = ann["category_id"]
        if "shift" in perturb and orig_id == CAR:
            mask = np.pad(mask, ((0, 0), (8, 0)))[:, :-8]
            box[0] += 8
        if "wrong_class" in perturb and orig_id == CHAIR:
            cat = sofa
        objs.append((ann["image_id"], cat, mask, box, 1.0 - 0.05 * orig_id))
    return objs


def as_instances(gt, objs, cats):
    """{image_id: instances dict} for COCOEvaluator.process (every image, possibly empty)."""
    out = {}
    for img in gt.dataset["images"]:
        mine = [o for o in objs if o[0] == img["id"]]
        h, w = img["height"], img["width"]
        out[img["id"]] = {
            "boxes": np.array([[x, y, x + bw, y + bh] for _, _, _, (x, y, bw, bh), _ in mine],
                              dtype=np.float32).reshape(-1, 4),
            "scores": np.array([o[4] for o in mine], dtype=np.float32),
            "labels": np.array([cats.index(o[1]) for o in mine], dtype=np.int64),
            "masks": np.array([o[2] for o in mine], dtype=bool).reshape(-1, h, w)}
    return out


def run_evaluator(gt, objs, cats, image_ids=None):
    ev = COCOEvaluator(gt)
    for image_id, inst in as_instances(gt, objs, cats).items():
        if image_ids is None or image_id in image_ids:
            ev.process(image_id, inst)
    return ev, ev.evaluate()


def direct_cocoeval(gt, objs, iou_type, cat_ids=None):
    """COCOeval on a results list built by hand, as a test-dev submission of that iou type
    holds them (segm: segmentation only, bbox: bbox only). Returns (stats, summary text)."""
    if iou_type == "segm":
        res = [{"image_id": i, "category_id": c, "score": s,
                "segmentation": mask_util.encode(np.asfortranarray(m.astype(np.uint8)))}
               for i, c, m, _, s in objs]
    else:
        res = [{"image_id": i, "category_id": c, "bbox": b, "score": s} for i, c, _, b, s in objs]
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        e = COCOeval(gt, gt.loadRes(res), iou_type)
        if cat_ids is not None:
            e.params.catIds = cat_ids
        e.evaluate()
        e.accumulate()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        e.summarize()
    return e.stats, text.getvalue()


def test_ground_truth_as_predictions_scores_100(gt, cats):
    ev, m = run_evaluator(gt, gt_objects(gt), cats)
    with_gt = {gt.cats[a["category_id"]]["name"] for a in gt.dataset["annotations"]}
    assert with_gt == {"person", "bottle", "bus", "car", "chair", "sofa"}
    for t in ("segm", "bbox"):
        assert [m[t][k] for k in TABLE_METRICS] == pytest.approx([100.0] * 6, abs=1e-9), t
        for name, ap in m[t]["per_category"].items():
            assert ap == pytest.approx(100.0) if name in with_gt else math.isnan(ap), (t, name)
    md = report.markdown(m)
    assert "| segm | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in md
    assert "| bus | 100.0 | 100.0 |" in md and "| cat |" not in md  # no ground truth: left out


def test_any_class_boxes_ignore_the_labels(gt, cats):
    """Every box exact but every label wrong: the class-aware scores are 0, the class-agnostic
    ones 100, and the report says so; with one box left out, recall falls by one object."""
    objs = gt_objects(gt)
    wrong = [(i, cats[(cats.index(c) + 1) % len(cats)], m, b, s) for i, c, m, b, s in objs]
    _, m = run_evaluator(gt, wrong, cats)
    assert m["bbox"]["AP50"] == pytest.approx(0.0)
    sizes = {a["id"]: ("small" if a["area"] < 32 ** 2 else "medium" if a["area"] < 96 ** 2
                       else "large") for a in gt.dataset["annotations"]}
    present = sorted(set(sizes.values()))
    assert m["bbox"]["any_class"] == pytest.approx(
        {"AP50": 100.0, "recall50": 100.0,
         **{f"recall50_{k}": 100.0 if k in present else math.nan
            for k in ("small", "medium", "large")}}, nan_ok=True)
    assert ("Boxes with the class ignored (IoU 0.5): AP50 100.0, recall 100.0 (small / medium / "
            "large") in report.markdown(m)
    _, m = run_evaluator(gt, wrong[1:], cats)
    assert m["bbox"]["any_class"]["recall50"] == pytest.approx(100.0 * (len(objs) - 1) / len(objs))
    # the object left out (the lowest id) lowers its own size's recall alone
    first = min(sizes)
    in_range = sum(v == sizes[first] for v in sizes.values())
    for k in present:
        want = 100.0 * (in_range - 1) / in_range if k == sizes[first] else 100.0
        assert m["bbox"]["any_class"][f"recall50_{k}"] == pytest.approx(want), k


def test_pycocotools_cannot_match_annotation_id_0():
    """Why load_coco_gt shifts ids: on the raw json, the perfect box of annotation 0 is scored a
    false positive by pycocotools (dtm holds the matched id, 0 reads as unmatched)."""
    raw = COCO()
    with open(labelme_annotations()) as f:
        raw.dataset = json.load(f)
    with contextlib.redirect_stdout(io.StringIO()):
        raw.createIndex()
    objs = [(a["image_id"], a["category_id"], None, a["bbox"], 1.0)
            for a in raw.dataset["annotations"]]
    stats, _ = direct_cocoeval(raw, objs, "bbox")
    assert stats[0] < 0.99  # 0.949 with pycocotools 2.0.11: person AP 0.69, not 1


def test_drop_one_gives_recall_limited_ap(gt, cats):
    """Without the first person (large): person recall 5/6, precision 1 up to it, so person
    AP = fraction of recall thresholds <= 5/6 (84/101); the other 5 categories stay at 1.
    Among large objects, person recall is 3/4 (76/101) with bus, chair, sofa at 1."""
    _, m = run_evaluator(gt, gt_objects(gt, ["drop"]), cats)
    person = np.mean(REC_THRS <= 5 / 6)
    person_large = np.mean(REC_THRS <= 3 / 4)
    for t in ("segm", "bbox"):
        assert m[t]["AP"] == pytest.approx(100 * (5 + person) / 6, abs=1e-9)
        assert m[t]["AP50"] == pytest.approx(100 * (5 + person) / 6, abs=1e-9)
        assert m[t]["APl"] == pytest.approx(100 * (3 + person_large) / 4, abs=1e-9)
        assert [m[t]["APm"], m[t]["APs"]] == pytest.approx([100.0, 100.0], abs=1e-9)
        assert m[t]["per_category"]["person"] == pytest.approx(100 * 84 / 101, abs=1e-9)


@pytest.mark.parametrize("perturb", [["drop"], ["shift"], ["wrong_class"],
                                     ["drop", "shift", "wrong_class"]], ids="+".join)
def test_perturbed_matches_direct_cocoeval(gt, cats, perturb):
    objs = gt_objects(gt, perturb)
    _, m = run_evaluator(gt, objs, cats)
    for t in ("segm", "bbox"):
        stats, text = direct_cocoeval(gt, objs, t)
        assert [m[t][k] for k in TABLE_METRICS] == pytest.approx(100 * stats[:6], abs=1e-9)
        assert m[t]["summary"] == text  # all 12 numbers, as pycocotools prints them
        assert report.coco_summary_text({t: m[t]}) == f"IoU type: {t}\n{text}"
        for cat_id in gt.getCatIds():
            one, _ = direct_cocoeval(gt, objs, t, cat_ids=[cat_id])
            got = m[t]["per_category"][gt.cats[cat_id]["name"]]
            assert (math.isnan(got) and one[0] == -1) or got == pytest.approx(100 * one[0])
            got50 = m[t]["per_category_AP50"][gt.cats[cat_id]["name"]]
            assert (math.isnan(got50) and one[1] == -1) or got50 == pytest.approx(100 * one[1])
    assert m["segm"]["AP"] < 100.0


def test_empty_predictions_give_zero(gt, cats):
    ev, m = run_evaluator(gt, [], cats)
    assert ev.results() == []
    for t in ("segm", "bbox"):
        assert [m[t][k] for k in TABLE_METRICS] == [0.0] * 6
        assert m[t]["per_category"]["bus"] == 0.0 and math.isnan(m[t]["per_category"]["cat"])


def test_images_without_predictions(gt, cats):
    """Predictions on the first image only: the other two images' ground truth is missed, as
    COCOeval counts it directly; processing only the first image evaluates only it."""
    first = gt.dataset["images"][0]["id"]
    objs = [o for o in gt_objects(gt) if o[0] == first]
    _, m = run_evaluator(gt, objs, cats)
    for t in ("segm", "bbox"):
        stats, _ = direct_cocoeval(gt, objs, t)
        assert [m[t][k] for k in TABLE_METRICS] == pytest.approx(100 * stats[:6], abs=1e-9)
        assert m[t]["AP"] < 100.0
    _, only_first = run_evaluator(gt, objs, cats, image_ids={first})
    assert only_first["segm"]["AP"] == pytest.approx(100.0, abs=1e-9)


def test_results_round_trip_in_test_dev_format(gt, cats, tmp_path):
    objs = gt_objects(gt, ["wrong_class"])
    ev, m = run_evaluator(gt, objs, cats)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(ev.results()))
    results = json.loads(path.read_text())
    assert len(results) == len(objs)
    for r, (image_id, cat, mask, box, score) in zip(results, objs):
        assert set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"}
        assert (r["image_id"], r["category_id"]) == (image_id, cat)
        assert r["bbox"] == pytest.approx(box) and r["score"] == pytest.approx(score)
        assert isinstance(r["segmentation"]["counts"], str)
        assert np.array_equal(mask_util.decode(r["segmentation"]).astype(bool), mask)
    with contextlib.redirect_stdout(io.StringIO()):
        assert len(gt.loadRes(json.loads(path.read_text())).getAnnIds()) == len(objs)

    out = tmp_path / "out"
    targets = tmp_path / "targets.json"
    targets.write_text(json.dumps({"targets": [
        ["labelme", "segm/AP", m["segm"]["AP"], 0.01, "this run"],
        ["labelme_miss", "bbox/AP", 50.0, 1.0, "a number it cannot reach"]]}))
    cmd = [sys.executable, os.path.join(REPO_ROOT, "scripts", "eval.py"),
           "--ann", labelme_annotations(), "--results", str(path), "--out", str(out),
           "--targets", str(targets), "--check"]
    ok = subprocess.run(cmd + ["labelme"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "[ok] labelme segm/AP" in ok.stdout and "Average Precision" in ok.stdout
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["segm"]["AP"] == pytest.approx(m["segm"]["AP"])
    assert saved["segm"]["per_category"]["cat"] is None  # NaN saved as null
    assert "| segm |" in (out / "metrics.md").read_text()
    assert json.loads((out / "run.json").read_text())["args"]["check"] == "labelme"
    miss = subprocess.run(cmd + ["labelme_miss"], capture_output=True, text=True)
    assert miss.returncode == 1 and "[MISS] labelme_miss bbox/AP" in miss.stdout
    unknown = subprocess.run(cmd + ["nope"], capture_output=True, text=True)
    assert unknown.returncode == 1 and "no reproduction target for task 'nope'" in unknown.stderr


def test_process_rejects_bad_input(gt, cats):
    ev = COCOEvaluator(gt)
    with pytest.raises(RuntimeError, match="before any process"):
        ev.evaluate()
    image = gt.dataset["images"][0]
    inst = as_instances(gt, gt_objects(gt), cats)[image["id"]]
    with pytest.raises(ValueError, match="paste them back"):
        ev.process(image["id"], dict(inst, masks=inst["masks"][:, :-1]))
    with pytest.raises(ValueError, match="labels must be integers"):
        ev.process(image["id"], dict(inst, labels=inst["labels"] + len(cats)))
    with pytest.raises(KeyError):
        ev.process(12345, inst)
    ev.process(image["id"], inst)
    with pytest.raises(ValueError, match="already processed"):
        ev.process(image["id"], inst)
