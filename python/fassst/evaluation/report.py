"""Metrics to text: pycocotools' summary, markdown tables as the paper's, a json file.

The metrics dict is what the evaluators return, keyed by task:
    "segm", "bbox": coco_evaluator.summarize() ({"AP", ..., "per_category", "summary"})
    "cityscapes":   cityscapes_eval ({"AP", "AP50", "per_class": {class: {"AP", "AP50"}}})
Values are percentages; NaN (undefined) prints as "-" and is saved as null.
"""
import json
import math
import os

from fassst.data.cityscapes_labels import CLASSES
from fassst.evaluation.coco_evaluator import AREA_SIZES, IOU_TYPES, TABLE_METRICS


def _cell(value):
    return "-" if value is None or math.isnan(value) else f"{value:.1f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def coco_summary_text(metrics):
    """pycocotools' own 12-line summary per iou type, as its summarize() prints it."""
    return "\n".join(f"IoU type: {t}\n{metrics[t]['summary']}"
                     for t in IOU_TYPES if t in metrics)


def coco_markdown(metrics):
    """Table 1's columns (AP, AP50, AP75, APs, APm, APl), a row per iou type, then per-category
    AP (categories without ground truth left out)."""
    types = [t for t in IOU_TYPES if t in metrics]
    main = _table(["IoU type", *TABLE_METRICS],
                  [[t, *(_cell(metrics[t][m]) for m in TABLE_METRICS)] for t in types])
    names = [n for n in metrics[types[0]]["per_category"]
             if any(not math.isnan(metrics[t]["per_category"][n]) for t in types)]
    per_cat = _table(["category", *(f"{t} AP" for t in types)],
                     [[n, *(_cell(metrics[t]["per_category"][n]) for t in types)] for n in names])
    agnostic = metrics.get("bbox", {}).get("any_class")
    where = ("" if agnostic is None else
             f"\n\nBoxes with the class ignored (IoU 0.5): AP50 {_cell(agnostic['AP50'])}, "
             f"recall {_cell(agnostic['recall50'])} ({' / '.join(AREA_SIZES)} "
             f"{' / '.join(_cell(agnostic.get(f'recall50_{k}', math.nan)) for k in AREA_SIZES)}).")
    return f"{main}{where}\n\nPer-category AP:\n\n{per_cat}"


def cityscapes_markdown(metrics, method="FASSST"):
    """Table 3's layout: one row, AP and AP50, then AP per class (official evaluation)."""
    row = [method, _cell(metrics["AP"]), _cell(metrics["AP50"]),
           *(_cell(metrics["per_class"][c]["AP"]) for c in CLASSES)]
    return _table(["method", "AP", "AP50", *CLASSES], [row])


def markdown(metrics, method="FASSST"):
    parts = []
    if any(t in metrics for t in IOU_TYPES):
        parts.append("## COCO metrics (pycocotools)\n\n" + coco_markdown(metrics))
    if "cityscapes" in metrics:
        parts.append("## Cityscapes (official instance-level evaluation)\n\n"
                     + cityscapes_markdown(metrics["cityscapes"], method))
    return "\n\n".join(parts) + "\n"


def _json_ready(value):
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None  # json has no NaN; null = undefined
    return value


def save_json(metrics, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(_json_ready(metrics), f, indent=2, sort_keys=True)
        f.write("\n")


def save_markdown(metrics, path, method="FASSST"):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(markdown(metrics, method))
