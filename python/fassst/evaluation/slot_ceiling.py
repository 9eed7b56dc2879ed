"""The most a grid of n slots can score on a data set: a bound no training can pass.

Training gives each instance one slot of the IAM's S x S grid (data/assign.py): the cell of its
box centre, else a free neighbour. An instance left without one is dropped from the targets, and
a slot predicts one instance, so on crowded photos a perfect network still misses instances.
This scores that perfect network with pycocotools: the ground-truth mask and box of every kept
instance, score 1, against all the ground truth; the dropped ones, and the annotations training
cannot use (no pixels, boxes under 1 px), count as misses. Photos are placed as at inference
(letterboxed, not flipped or rescaled); augmentation moves centres between cells, so it can
keep an instance one epoch and drop it the next.
"""
import numpy as np

from fassst.data.assign import assign
from fassst.data.coco_dataset import CocoDataset
from fassst.data.letterbox import fit
from fassst.evaluation.coco_evaluator import evaluate_results, instances_to_results, load_coco_gt
from fassst.net.geometry import grid_side


def slot_ceiling(ann_file, input_size, num_slots):
    """{"instances", "kept", "dropped", "unusable": counts; "segm", "bbox": evaluate_results'
    metrics} of the perfect predictions an S x S grid can hold (S * S = num_slots) at input_size.
    Crowd regions are neither instances nor misses (COCOeval ignores them)."""
    grid = grid_side(num_slots)
    data = CocoDataset(ann_file, image_dir="")
    results, kept, dropped, unusable = [], 0, 0, 0
    for index in range(len(data)):
        s = data.instances(index)
        info = data.coco.imgs[s.image_id]
        lb = fit(int(info["height"]), int(info["width"]), input_size)
        a = assign(lb.boxes_to_input(s.boxes), s.classes, s.areas, grid, data.num_classes,
                   input_size, input_size)
        kept, dropped = kept + len(a.pairs), dropped + a.dropped
        unusable += sum(s.dropped.values())
        chosen = [i for _, i in a.pairs]
        perfect = {"boxes": s.boxes[chosen], "labels": s.classes[chosen],
                   "scores": np.ones(len(chosen))}
        # The predictions' own converter for boxes and classes; the masks are the annotations'
        # RLEs as they are (decoding them to re-encode would only cost time).
        for r, i in zip(instances_to_results(s.image_id, perfect, data.category_ids), chosen):
            counts = s.rles[i]["counts"]
            r["segmentation"] = {"size": list(s.rles[i]["size"]),
                                 "counts": counts.decode("ascii") if isinstance(counts, bytes)
                                 else counts}
            results.append(r)
    metrics = evaluate_results(load_coco_gt(ann_file), results)
    return {"instances": kept + dropped + unusable, "kept": kept, "dropped": dropped,
            "unusable": unusable, **metrics}


def ceiling_row(num_slots, ceiling, classes=()):
    """One markdown table row: slots, grid, instances, kept, dropped, unusable, mask AP50 and AP,
    box AP50, then each class's mask AP50 (NaN where the class has no ground truth)."""
    segm, bbox = ceiling["segm"], ceiling["bbox"]
    per_class = [segm["per_category_AP50"].get(c, float("nan")) for c in classes]
    cells = [str(num_slots), f"{grid_side(num_slots)} x {grid_side(num_slots)}",
             *(str(ceiling[k]) for k in ("instances", "kept", "dropped", "unusable")),
             *(f"{v:.1f}" for v in [segm["AP50"], segm["AP"], bbox["AP50"], *per_class])]
    return "| " + " | ".join(cells) + " |"


def ceiling_header(classes=()):
    """The table's header and alignment lines, for ceiling_row."""
    head = ["slots", "grid", "instances", "kept", "dropped (no cell)", "unusable",
            "mask AP50", "mask AP", "box AP50", *(f"{c} mask AP50" for c in classes)]
    return "| " + " | ".join(head) + " |\n|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"

