"""The official Cityscapes instance-level evaluation (cityscapesscripts), as an evaluator class.

Predictions are written in the format the official script reads: per image a text file
`<city>_<seq>_<frame>_pred.txt` with lines `masks/<png> <label id> <score>`, each PNG a binary
mask (non-zero inside) at the image's size. Then
cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling.evaluateImgLists runs on them and
the `*_gtFine_instanceIds.png` ground truth: AP over overlaps 0.50:0.95, AP at 0.5, per class.
Its classes are the labels with instances that are not ignored in evaluation, the paper's 8.
Values are returned as percentages (the paper's Table 3); NaN for a class without ground truth.

Three things about the official script are handled here rather than patched in it:
- It keeps its settings in a module-global `args`; each run gets a deep copy.
- It caches the ground truth in `gtInstances.json` (by default inside the installed package) and
  never invalidates it; each run puts the cache in work_dir and deletes it first. It also writes
  `matches.json` into the current directory, so it runs with work_dir as the current directory.
- It was written for NumPy 1.x; NumPy is pinned to 2.4 here (pycaffe's ABI), where np.in1d is
  gone and np.count_nonzero returns numpy.int64, which its json writer cannot serialise
  (matches.json). For the run, the module's `np` is a proxy that restores both (in1d as np.isin
  on the flattened input, its definition; count_nonzero as a Python int), and one crash of its
  own (cumsum of an empty array, see the proxy); numpy itself is not modified. Errors it
  reports with sys.exit become RuntimeError.
"""
import contextlib
import copy
import os
import shutil
import warnings

import numpy as np
from PIL import Image

from fassst.data import coco_rle
from fassst.data.cityscapes_labels import CLASSES, LABEL_IDS


def core_name(file_name):
    """"aachen_000000_000019" from any Cityscapes file name or path of that image."""
    parts = os.path.basename(file_name).split("_")
    if len(parts) < 3:
        raise ValueError(f"{file_name!r} is not a Cityscapes file name (<city>_<seq>_<frame>...)")
    return "_".join(parts[:3])


class _NumpyAsOfficialExpects:
    """numpy as the official script was written for (NumPy 1.x), where NumPy 2.4 differs."""

    def __getattr__(self, name):
        return getattr(np, name)

    @staticmethod
    def in1d(ar1, ar2, assume_unique=False, invert=False):
        return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)

    @staticmethod
    def cumsum(a, *args, **kwargs):
        # Its AP code reads cumsum(y_true)[-1]; when a class has ground truth and predictions
        # but no match and every unmatched prediction is ignored (void), y_true is empty and
        # the script dies with IndexError. A lone 0 makes that class's AP 0, the value the
        # script itself gives a class with ground truth and no predictions.
        out = np.cumsum(a, *args, **kwargs)
        return out if out.size else np.zeros(1, out.dtype)

    @staticmethod
    def count_nonzero(a, axis=None, **kwargs):
        # NumPy 1.x returned a Python int for a whole-array count; 2.4 returns numpy.int64,
        # which the script's json writer (default=o.__dict__) cannot serialise.
        n = np.count_nonzero(a, axis=axis, **kwargs)
        return int(n) if axis is None else n


@contextlib.contextmanager
def _official_run(module, work_dir):
    saved_np, saved_cwd = module.np, os.getcwd()
    module.np = _NumpyAsOfficialExpects()
    os.chdir(work_dir)
    try:
        with warnings.catch_warnings():
            # nanmean over a class without ground truth in any image: NaN is the answer.
            warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
            yield
    except SystemExit as e:
        raise RuntimeError(f"cityscapesscripts' evaluation stopped (exit {e.code}); its "
                           f"message is printed above") from None
    finally:
        os.chdir(saved_cwd)
        module.np = saved_np


class CityscapesInstanceEvaluator:
    """reset / process / evaluate around the official instance-level evaluation.

    gt_dir: gtFine/<split>, holding <city>/<name>_gtFine_instanceIds.png.
    work_dir: gets pred/ (the written predictions, cleared by reset), the ground-truth cache,
    matches.json and resultInstanceLevelSemanticLabeling.json.
    """

    def __init__(self, gt_dir, work_dir):
        self._gt_dir = os.path.abspath(gt_dir)
        self._work_dir = os.path.abspath(work_dir)
        self._pred_dir = os.path.join(self._work_dir, "pred")
        self.reset()

    def reset(self):
        shutil.rmtree(self._pred_dir, ignore_errors=True)
        os.makedirs(os.path.join(self._pred_dir, "masks"))
        self._pairs = {}  # core name -> (prediction txt, ground-truth png)

    def gt_png(self, name):
        core = core_name(name)
        return os.path.join(self._gt_dir, core.split("_")[0], f"{core}_gtFine_instanceIds.png")

    def process(self, image_name, instances):
        """Write one image's predictions.

        image_name: any Cityscapes file name of the image ("aachen_000000_000019_leftImg8bit.png").
        instances: masks (K, H, W) bool at the original size, labels (K,) indices into CLASSES,
        scores (K,). Empty masks are not written (the official script skips them anyway).
        """
        core = core_name(image_name)
        gt = self.gt_png(core)
        if not os.path.isfile(gt):
            raise FileNotFoundError(f"{gt}: no ground truth for {image_name}")
        if core in self._pairs:
            raise ValueError(f"{core} was already processed since reset()")
        masks = np.asarray(instances["masks"])
        labels = np.asarray(instances["labels"]).reshape(-1)
        scores = np.asarray(instances["scores"], dtype=np.float64).reshape(-1)
        if masks.ndim != 3 or not len(masks) == len(labels) == len(scores):
            raise ValueError(f"{core}: masks {masks.shape}, labels {labels.shape}, scores "
                             f"{scores.shape} do not describe the same K instances")
        with Image.open(gt) as im:
            size = (im.height, im.width)
        if len(masks) and tuple(masks.shape[1:]) != size:
            raise ValueError(f"{core}: masks are {masks.shape[1:]} but the ground truth is "
                             f"{size} (H, W): paste them back to the original size")
        lines = []
        for k, (mask, label, score) in enumerate(zip(masks, labels, scores)):
            if not 0 <= int(label) < len(CLASSES):
                raise ValueError(f"{core}: label {label} is not an index into {CLASSES}")
            if not mask.any():
                continue
            png = f"masks/{core}_{k}_{CLASSES[int(label)]}.png"
            Image.fromarray(np.where(mask, 255, 0).astype(np.uint8)).save(
                os.path.join(self._pred_dir, png))
            lines.append(f"{png} {LABEL_IDS[int(label)]} {score:.6f}\n")
        txt = os.path.join(self._pred_dir, f"{core}_pred.txt")
        with open(txt, "w") as f:
            f.writelines(lines)
        self._pairs[core] = (txt, gt)

    def evaluate(self):
        """{"AP": %, "AP50": %, "per_class": {class: {"AP": %, "AP50": %}}} over the processed
        images, from the official script."""
        from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as official

        if not self._pairs:
            raise RuntimeError("evaluate() before any process(): no image to evaluate")
        args = copy.deepcopy(official.args)
        args.predictionPath = self._pred_dir
        args.predictionWalk = None
        args.gtInstancesFile = os.path.join(self._work_dir, "gtInstances.json")
        args.exportFile = os.path.join(self._work_dir, "resultInstanceLevelSemanticLabeling.json")
        args.JSONOutput, args.quiet, args.colorized = True, True, False
        if os.path.exists(args.gtInstancesFile):
            os.remove(args.gtInstancesFile)
        preds, gts = zip(*(self._pairs[c] for c in sorted(self._pairs)))
        with _official_run(official, self._work_dir):
            result = official.evaluateImgLists(list(preds), list(gts), args)
        if sorted(args.instLabels) != sorted(CLASSES):
            raise RuntimeError(f"the official script evaluated {args.instLabels}, not {CLASSES}")
        avg = result["averages"]
        return {"AP": 100.0 * float(avg["allAp"]), "AP50": 100.0 * float(avg["allAp50%"]),
                "per_class": {name: {"AP": 100.0 * float(avg["classes"][name]["ap"]),
                                     "AP50": 100.0 * float(avg["classes"][name]["ap50%"])}
                              for name in CLASSES}}


def evaluate_coco_results(coco_gt, results, gt_dir, work_dir):
    """Official Cityscapes metrics of a COCO results list on a cityscapes_to_coco json.

    Every image of the json is evaluated (one without results has its ground truth missed).
    """
    cat_names = {c["id"]: c["name"] for c in coco_gt.dataset["categories"]}
    if sorted(cat_names.values()) != sorted(CLASSES):
        raise ValueError(f"the json's categories {sorted(cat_names.values())} are not the "
                         f"Cityscapes classes {CLASSES}: is it a cityscapes_to_coco json?")
    by_image = {}
    for r in results:
        by_image.setdefault(r["image_id"], []).append(r)
    evaluator = CityscapesInstanceEvaluator(gt_dir, work_dir)
    for img in coco_gt.dataset["images"]:
        dets = by_image.get(img["id"], [])
        masks = [coco_rle.decode(d["segmentation"]) for d in dets]
        evaluator.process(img["file_name"], {
            "masks": np.array(masks) if dets else np.zeros((0, img["height"], img["width"]), bool),
            "labels": [CLASSES.index(cat_names[d["category_id"]]) for d in dets],
            "scores": [d["score"] for d in dets]})
    return evaluator.evaluate()
