"""Grid target assignment (docs/DESIGN.md, "Data"): ground-truth instances to the IAM's S x S slots.

Algorithm, per image:
  1. Instances are visited largest first (mask area; ties: lower index first).
  2. An instance's home cell is the cell holding its box centre; slot = row * S + col (the
     order of the IAM's output, `iam_slots`). If free, it takes it; so on a clash the larger
     instance keeps the cell.
  3. Otherwise it takes the free cell among its home cell's 8 neighbours whose centre is
     nearest its box centre (ties: lower slot); with none free it is dropped and counted.
Crowd regions are never assigned.

Boxes are (x1, y1, x2, y2) in input pixels (pixel edges, no +1), inside the H x W input.
Targets per slot: loc = (t, l, b, r) = (y1 / H, x1 / W, y2 / H, x2 / W); cls one-hot. With
box_coding "cell" each edge fraction e becomes (e - c + 1) / 2, c the slot's cell centre (an image
fraction): the inverse of IAMDecode's CELL decoding, c + 2 s - 1 (caffe/util/iam_box_util.hpp).
"""
from typing import List, NamedTuple, Tuple

import numpy as np

from fassst.net.geometry import BOX_CODINGS


class Assignment(NamedTuple):
    cls_target: np.ndarray     # (n, C) float32, one-hot at assigned slots
    loc_target: np.ndarray     # (n, 4) float32 (t, l, b, r) fractions, 0 where unassigned
    loc_weight: np.ndarray     # (n, 4) float32, 1 at assigned slots
    pairs: List[Tuple[int, int]]  # (slot, instance), by slot
    dropped: int               # non-crowd instances left without a cell


def assign(boxes, classes, areas, grid, num_classes, height, width, crowd=None,
           box_coding="image"):
    """Assign k instances to grid x grid slots.

    boxes (k, 4) input pixels; classes (k,) in 0..C-1; areas (k,) instance sizes (any unit
    proportional to pixels); crowd (k,) bool or None; box_coding "image" or "cell".
    """
    if box_coding not in BOX_CODINGS:
        raise ValueError(f"box_coding must be 'image' or 'cell', got {box_coding!r}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    k, n = len(boxes), grid * grid
    classes = np.asarray(classes, np.int64).reshape(k)
    areas = np.asarray(areas, np.float64).reshape(k)
    crowd = np.zeros(k, bool) if crowd is None else np.asarray(crowd, bool).reshape(k)
    if k and (classes.min() < 0 or classes.max() >= num_classes):
        raise ValueError(f"class indices must be in [0, {num_classes}), got {classes.tolist()}")
    cell_w, cell_h = width / grid, height / grid
    rows, cols = home_cells(boxes, grid, height, width)
    owner = -np.ones(n, np.int64)
    dropped = 0
    for i in sorted(np.flatnonzero(~crowd), key=lambda j: (-areas[j], j)):
        cx, cy = (boxes[i, 0] + boxes[i, 2]) / 2, (boxes[i, 1] + boxes[i, 3]) / 2
        row, col = int(rows[i]), int(cols[i])
        slot = row * grid + col
        if owner[slot] >= 0:
            slot = _nearest_free_neighbour(owner, row, col, cx, cy, grid, cell_w, cell_h)
        if slot is None:
            dropped += 1
        else:
            owner[slot] = i
    cls_target = np.zeros((n, num_classes), np.float32)
    loc_target = np.zeros((n, 4), np.float32)
    loc_weight = np.zeros((n, 4), np.float32)
    pairs = [(int(s), int(owner[s])) for s in np.flatnonzero(owner >= 0)]
    for slot, i in pairs:
        x1, y1, x2, y2 = boxes[i]
        cls_target[slot, classes[i]] = 1
        loc_target[slot] = (y1 / height, x1 / width, y2 / height, x2 / width)
        if box_coding == "cell":
            row, col = divmod(slot, grid)
            centre = np.array([row + 0.5, col + 0.5, row + 0.5, col + 0.5]) / grid
            loc_target[slot] = (loc_target[slot] - centre + 1) / 2
        loc_weight[slot] = 1
    return Assignment(cls_target, np.clip(loc_target, 0, 1), loc_weight, pairs, dropped)


def home_cells(boxes, grid, height, width):
    """(rows, cols) of the cells holding the (k, 4) boxes' centres: step 2's home cell."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    cols = np.clip(np.floor_divide(cx, width / grid).astype(np.int64), 0, grid - 1)
    rows = np.clip(np.floor_divide(cy, height / grid).astype(np.int64), 0, grid - 1)
    return rows, cols


def _nearest_free_neighbour(owner, row, col, cx, cy, grid, cell_w, cell_h):
    best = None
    for r in range(max(row - 1, 0), min(row + 2, grid)):
        for c in range(max(col - 1, 0), min(col + 2, grid)):
            slot = r * grid + c
            if owner[slot] >= 0:
                continue
            d = ((c + 0.5) * cell_w - cx) ** 2 + ((r + 0.5) * cell_h - cy) ** 2
            if best is None or (d, slot) < best:
                best = (d, slot)
    return None if best is None else best[1]
