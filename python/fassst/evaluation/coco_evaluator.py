"""COCO instance evaluation on pycocotools, in detectron2's COCOEvaluator shape.

    evaluator = COCOEvaluator(coco_gt)          # a pycocotools COCO, or a json path
    evaluator.reset()
    for image_id, instances in predictions:     # instances: numpy arrays, see process()
        evaluator.process(image_id, instances)
    metrics = evaluator.evaluate()              # {"segm": {"AP": ..}, "bbox": {..}}
    json.dump(evaluator.results(), f)           # COCO test-dev submission format

Box convention: boxes arrive as (x1, y1, x2, y2) in original-image pixels, continuous, no +1
(detectron2's); COCO's [x, y, w, h] is (x1, y1, x2 - x1, y2 - y1). A mask covering pixel
columns 10..19 has the box x1 = 10, x2 = 20.

Metrics are percentages, as papers print them; NaN where undefined (no ground truth in that
category or area range: pycocotools' -1).
"""
import contextlib
import copy
import io
import warnings

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval, Params

from fassst.data import coco_rle
from fassst.data.coco_json import check_coco, check_segmentation, rle_problem
from fassst.errors import InputError, read_json

IOU_TYPES = ("segm", "bbox")
# The first six of COCOeval.stats, in its order: the paper's Table 1 columns.
TABLE_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# COCOeval's area ranges after "all", in its areaRng order: any_class_boxes' recall50_<size> keys.
AREA_SIZES = tuple(Params().areaRngLbl[1:])


def _quiet():
    """pycocotools prints progress on every call; keep it out of our output."""
    return contextlib.redirect_stdout(io.StringIO())


def load_coco_gt(gt):
    """A pycocotools COCO safe to evaluate against, from a json path, a dataset dict or a COCO.

    pycocotools' matcher stores the matched ground-truth annotation id in dtm and tests it for
    truth (accumulate: tps = dtm & ~dtIg), so a ground truth with annotation id 0 can never be
    matched: a perfect detection of it counts as a false positive (labelme's example json starts
    at id 0; its ground truth scored 94.9 bbox AP against itself). Ids <= 0 are therefore shifted
    up, on a copy; ids only link matches, no metric depends on their values.
    """
    if isinstance(gt, COCO):
        dataset = gt.dataset
    else:
        where = "ground truth" if isinstance(gt, dict) else gt
        dataset = gt if isinstance(gt, dict) else read_json(gt, "annotation file")
        check_coco(dataset, where, for_eval=True)
        images = {im["id"]: im for im in dataset["images"]}
        for a in dataset["annotations"]:  # COCOeval decodes every one
            im = images[a["image_id"]]
            check_segmentation(a["segmentation"], im["height"], im["width"],
                               f"{where}: annotation {a['id']}", strict=True)
    ann_ids = [a["id"] for a in dataset.get("annotations", [])]
    if isinstance(gt, COCO) and (not ann_ids or min(ann_ids) > 0):
        return gt
    if ann_ids and min(ann_ids) <= 0:
        warnings.warn(f"ground truth has annotation ids <= 0 (min {min(ann_ids)}), which "
                      f"pycocotools cannot match; evaluating with ids shifted by "
                      f"{1 - min(ann_ids)}", stacklevel=2)
        dataset = copy.copy(dataset)
        dataset["annotations"] = [dict(a, id=a["id"] + 1 - min(ann_ids))
                                  for a in dataset["annotations"]]
    coco = COCO()
    coco.dataset = dataset
    with _quiet():
        coco.createIndex()
    return coco


def instances_to_results(image_id, instances, category_ids, image_size=None):
    """COCO results (test-dev format) for one image's predictions.

    instances: dict of numpy arrays (K may be 0):
        boxes  (K, 4) x1, y1, x2, y2 in original-image pixels
        scores (K,)
        labels (K,)   contiguous class index; category_ids[label] is the json category id
        masks  (K, H, W) bool at original image size (optional: then no "segmentation")
        mask_windows (K, 4) optional: x0 y0 x1 y1 windows holding all of each mask (the
               predictor's), so that encoding reads only them
    image_size: (H, W) the masks must have, if given.
    """
    boxes = np.asarray(instances["boxes"], dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(instances["scores"], dtype=np.float64).reshape(-1)
    labels = np.asarray(instances["labels"]).reshape(-1)
    k = len(boxes)
    if len(scores) != k or len(labels) != k:
        raise ValueError(f"image {image_id}: {k} boxes, {len(scores)} scores, {len(labels)} labels")
    if k and (labels.min() < 0 or labels.max() >= len(category_ids)
              or not np.all(labels == np.round(labels))):
        raise ValueError(f"image {image_id}: labels must be integers in [0, {len(category_ids)}), "
                         f"got {labels.tolist()}")
    rles = None
    if instances.get("masks") is not None:
        masks = np.asarray(instances["masks"])
        if masks.ndim != 3 or len(masks) != k:
            raise ValueError(f"image {image_id}: masks must be ({k}, H, W), got {masks.shape}")
        if image_size is not None and k and tuple(masks.shape[1:]) != tuple(image_size):
            raise ValueError(f"image {image_id}: masks are {masks.shape[1:]} but the image is "
                             f"{tuple(image_size)} (H, W): paste them back to the original size")
        rles = coco_rle.encode(masks, instances.get("mask_windows"))
    results = []
    for i in range(k):
        x1, y1, x2, y2 = boxes[i]
        res = {"image_id": image_id, "category_id": int(category_ids[int(labels[i])]),
               "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
               "score": float(scores[i])}
        if rles is not None:
            res["segmentation"] = rles[i]
        results.append(res)
    return results


def read_results(path, coco_gt=None, iou_types=IOU_TYPES):
    """The detections of a COCO results json (a list); MissingFileError or InputError naming the
    file, and with coco_gt the first detection that cannot be evaluated for iou_types."""
    results = read_json(path, "results file")
    if not isinstance(results, list):
        raise InputError(f"{path}: a COCO results file is a JSON list, got {type(results).__name__}")
    for t in iou_types if coco_gt is not None else ():
        key = {"segm": "segmentation", "bbox": "bbox"}[t]
        for n, r in enumerate(results):
            problem = _result_problem(r, coco_gt, key)
            if problem:
                raise InputError(f"{path}: result {n}: {problem}, which {t} evaluation needs")
    return results


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _result_problem(r, coco_gt, key):
    """Why a result cannot be evaluated against coco_gt (text), or None."""
    if not isinstance(r, dict) or key not in r:
        return f"a result has no {key!r}"
    image_id = r.get("image_id")
    if isinstance(image_id, bool) or not isinstance(image_id, int) or image_id not in coco_gt.imgs:
        return f"a result's image_id {image_id!r} is not an image of the ground truth"
    category_id = r.get("category_id")
    if isinstance(category_id, bool) or not isinstance(category_id, int) \
            or category_id not in coco_gt.cats:
        return f"a result's category_id {category_id!r} is not a category of the ground truth"
    if not _is_number(r.get("score")):
        return f"a result's score {r.get('score')!r} is not a finite number"
    if key == "bbox":
        box = r["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            return f"a result's bbox {box!r} is not [x, y, w, h] of finite numbers"
        return None
    segm, image = r["segmentation"], coco_gt.imgs[image_id]
    if not (isinstance(segm, dict) and isinstance(segm.get("counts"), str)):
        return "a result's segmentation is not a compressed RLE ({size, counts: string})"
    problem = rle_problem(segm, image["height"], image["width"])
    return f"a result's segmentation: {problem}" if problem else None


def load_results(coco_gt, results, iou_type):
    """pycocotools results object for one iou type, from a results list (not modified).

    Every result is checked first (InputError naming the first bad one): pycocotools reads the
    keys without asking and decodes the RLE strings in C, past their end when cut short.
    For segm the boxes are left out: loadRes takes the area of a result that has a box from the
    box, which would sort masks into APs/APm/APl by box area (detectron2 drops them too). An
    empty list, on which loadRes crashes (it reads anns[0]), gives an empty results object: then
    COCOeval finds every ground truth missed and AP is 0 where ground truth exists.
    """
    key = {"segm": "segmentation", "bbox": "bbox"}[iou_type]
    drop = {"segm": "bbox", "bbox": "segmentation"}[iou_type]
    dets = []
    for r in results:
        problem = _result_problem(r, coco_gt, key)
        if problem:
            raise InputError(f"{problem}, which {iou_type} evaluation needs: {str(r)[:300]}")
        dets.append({k: v for k, v in r.items() if k != drop})
    with _quiet():
        if dets:
            return coco_gt.loadRes(dets)
        coco_dt = COCO()
        coco_dt.dataset = {"images": list(coco_gt.dataset["images"]),
                           "categories": copy.deepcopy(coco_gt.dataset["categories"]),
                           "annotations": []}
        coco_dt.createIndex()
        return coco_dt


def run_cocoeval(coco_gt, results, iou_type, img_ids=None):
    """The finished (summarized) COCOeval of a results list; img_ids restricts the images."""
    coco_dt = load_results(coco_gt, results, iou_type)
    coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
    if img_ids is not None:
        coco_eval.params.imgIds = list(img_ids)
    with _quiet():
        coco_eval.evaluate()
        coco_eval.accumulate()
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        coco_eval.summarize()
    coco_eval.summary_text = text.getvalue()  # pycocotools' familiar 12-line table
    return coco_eval


def _percent(value):
    return float("nan") if value < 0 else float(value) * 100.0


def summarize(coco_eval, coco_gt):
    """{"AP", "AP50", ..., "APl": %, "per_category": {name: AP %},
    "per_category_AP50": {name: AP50 %}, "summary": text}.

    Per-category AP as detectron2: IoU 0.50:0.95, all areas, 100 detections, mean of the
    precisions pycocotools defines (-1 excluded); NaN for a category without ground truth.
    Per-category AP50 the same at IoU 0.5 alone (what COCOeval's AP50 is for that category).
    """
    out = {name: _percent(v) for name, v in zip(TABLE_METRICS, coco_eval.stats)}
    precision = coco_eval.eval["precision"]  # (iou, recall, category, area, max dets)
    at50 = int(np.argmin(np.abs(np.asarray(coco_eval.params.iouThrs) - 0.5)))
    per_cat, per_cat50 = {}, {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        name = coco_gt.cats[cat_id]["name"]
        for table, p in ((per_cat, precision[:, :, k, 0, -1]),
                         (per_cat50, precision[at50, :, k, 0, -1])):
            p = p[p > -1]
            table[name] = float(np.mean(p)) * 100 if p.size else float("nan")
    out["per_category"] = per_cat
    out["per_category_AP50"] = per_cat50
    out["summary"] = coco_eval.summary_text
    return out


def any_class_boxes(coco_gt, results, img_ids=None):
    """{"AP50": %, "recall50": %, "recall50_small", .._medium, .._large: %} of the boxes with the
    classes ignored (COCOeval useCats 0): whether the detector finds where the objects are, apart
    from naming them. recall50 is COCOeval's recall at IoU 0.5, 100 detections, over all areas
    and then over COCO's three area ranges (which sizes the boxes miss)."""
    coco_eval = COCOeval(coco_gt, load_results(coco_gt, results, "bbox"), "bbox")
    coco_eval.params.useCats = 0
    if img_ids is not None:
        coco_eval.params.imgIds = list(img_ids)
    with _quiet():
        coco_eval.evaluate()
        coco_eval.accumulate()
    at50 = int(np.argmin(np.abs(np.asarray(coco_eval.params.iouThrs) - 0.5)))
    p = coco_eval.eval["precision"][at50, :, 0, 0, -1]
    recall = coco_eval.eval["recall"][at50, 0, :, -1]  # areaRng order: all, small, medium, large
    out = {"AP50": float(np.mean(p)) * 100 if (p > -1).all() else float("nan"),
           "recall50": _percent(recall[0])}
    for k, size in enumerate(AREA_SIZES, 1):
        out[f"recall50_{size}"] = _percent(recall[k])
    return out


def evaluate_results(coco_gt, results, iou_types=IOU_TYPES, img_ids=None):
    """{iou_type: summarize(...)} for a COCO results list against coco_gt; "bbox" also holds
    "any_class" (any_class_boxes)."""
    for t in iou_types:
        if t not in IOU_TYPES:
            raise ValueError(f"iou type must be one of {IOU_TYPES}, got {t!r}")
    out = {t: summarize(run_cocoeval(coco_gt, results, t, img_ids), coco_gt) for t in iou_types}
    if "bbox" in out:
        out["bbox"]["any_class"] = any_class_boxes(coco_gt, results, img_ids)
    return out


class COCOEvaluator:
    """Collects predictions image by image and evaluates them with pycocotools' COCOeval.

    Only the images passed to process() are evaluated (an image processed with no instances
    counts, its ground truth missed), so a partial run scores only what it ran on.
    category_ids: json category id of each contiguous class index; default: the json's
    category ids sorted (detectron2's mapping).
    """

    def __init__(self, coco_gt, iou_types=IOU_TYPES, category_ids=None):
        self._coco_gt = load_coco_gt(coco_gt)
        self._iou_types = tuple(iou_types)
        for t in self._iou_types:
            if t not in IOU_TYPES:
                raise ValueError(f"iou_types: each must be one of {IOU_TYPES}, got {t!r}")
        known = sorted(self._coco_gt.getCatIds())
        self.category_ids = list(known if category_ids is None else category_ids)
        unknown = set(self.category_ids) - set(known)
        if unknown:
            raise ValueError(f"category_ids {sorted(unknown)} are not in the ground truth json")
        self.reset()

    @property
    def coco_gt(self):
        return self._coco_gt

    def reset(self):
        self._results = []
        self._img_ids = set()

    def process(self, image_id, instances):
        """Add one image's predictions (see instances_to_results for `instances`)."""
        if image_id not in self._coco_gt.imgs:
            raise KeyError(f"image id {image_id} is not in the ground truth json")
        if image_id in self._img_ids:
            raise ValueError(f"image id {image_id} was already processed since reset()")
        if "segm" in self._iou_types and instances.get("masks") is None:
            raise ValueError("segm evaluation needs instances['masks']")
        img = self._coco_gt.imgs[image_id]
        self._results.extend(instances_to_results(
            image_id, instances, self.category_ids, (img["height"], img["width"])))
        self._img_ids.add(image_id)

    def results(self):
        """The collected predictions as a COCO results list (test-dev submission format):
        image_id, category_id, bbox [x, y, w, h], score, segmentation RLE (counts str)."""
        return copy.deepcopy(self._results)

    def evaluate(self):
        """{iou_type: {"AP", "AP50", "AP75", "APs", "APm", "APl", "per_category", "summary"}}."""
        if not self._img_ids:
            raise RuntimeError("evaluate() before any process(): no image to evaluate")
        return evaluate_results(self._coco_gt, self._results, self._iou_types,
                                img_ids=sorted(self._img_ids))
