"""What a backbone's features, held fixed, tell about photos not seen: two linear probes.

Why: trained on a few dozen photos, the network fits them and finds almost nothing in photos it
has not seen (docs/EXPERIMENTS.md, "Photos not seen"). The probes split that failure in two:
  - where: a logistic regression per grid cell, "does a box of this class have its centre
    here?", from the features pooled over the cell (the question the IAM's class output answers
    for its slot);
  - the box: a ridge regression of a box's four edges, as offsets from the centre of the cell
    that holds the box centre, from the features of that cell and its 8 neighbours (what the
    IAM's t, l, b, r answer), scored by the share of boxes within IoU 0.5 given the right cell.
Both are fitted on one set of photos and scored on another. A probe that uses the cell's
position alone (logistic) and the mean offset (boxes) are the floors: a score near them means
the features carry nothing that transfers.

Written with numpy rather than taken from a library because the pinned packages hold no
learner (scikit-learn is not among them) and each fit is a few lines.
"""
from typing import NamedTuple, Optional

import numpy as np
from pycocotools.cocoeval import Params



def cell_pool(features, grid):
    """(C, H, W) -> (grid, grid, C): the mean over each cell, with cells of floor/ceil bounds
    (PyTorch's adaptive average pooling), so any H, W >= 1 maps to the grid."""
    c, h, w = features.shape
    out = np.empty((grid, grid, c), np.float64)
    for i in range(grid):
        r0, r1 = i * h // grid, -(-(i + 1) * h // grid)
        for j in range(grid):
            c0, c1 = j * w // grid, -(-(j + 1) * w // grid)
            out[i, j] = features[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


def roc_auc(labels, scores):
    """Area under the ROC curve: the chance that a random positive outscores a random negative,
    ties counting one half (mid-ranks). NaN without both classes."""
    labels = np.asarray(labels, bool)
    scores = np.asarray(scores, np.float64)
    n1 = int(labels.sum())
    n0 = len(labels) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    _, index, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[index]  # 1-based mid-rank of each tie run
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(labels, scores):
    """Mean over the positives of the precision at each one's rank, scores descending (ties in
    input order). NaN without positives."""
    labels = np.asarray(labels, bool)
    if not labels.any():
        return float("nan")
    hits = labels[np.argsort(-np.asarray(scores, np.float64), kind="mergesort")]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def fit_logistic(x, y, lam, iters=2000, lr=0.5):
    """(w, b) minimising mean log loss + lam / 2 |w|^2 by full-batch gradient descent; x should
    be standardised (`standardise`) so that one step size suits every feature."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(iters):
        g = 1 / (1 + np.exp(-(x @ w + b))) - y
        w -= lr * (x.T @ g / len(y) + lam * w)
        b -= lr * g.mean()
    return w, b


def fit_ridge(x, t, lam):
    """(W, b) minimising |x W + b - t|^2 + lam |W|^2 (the bias not penalised)."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t, np.float64)
    xm, tm = x.mean(axis=0), t.mean(axis=0)
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc + lam * np.eye(x.shape[1]), xc.T @ (t - tm))
    return w, tm - xm @ w


def standardise(train, *others):
    """Each column to zero mean, unit variance by the training set's statistics."""
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-6
    return [(a - mean) / std for a in (train, *others)]


def box_iou(a, b):
    """Row-wise IoU of two (k, 4) arrays of (x1, y1, x2, y2)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
             - inter)
    return inter / np.maximum(union, 1e-12)


class ProbeData(NamedTuple):
    """What the probes read from one set of photos (net_features.collect builds it)."""
    cells: np.ndarray        # (K g g, C) features pooled per cell, photo-major, then row, col
    cell_pos: np.ndarray     # (K g g, g g) one-hot of the cell's position
    cell_label: np.ndarray   # (K g g,) bool: a box of the probed class has its centre here
    box_feats: np.ndarray    # (m, 9 C) the centre cell's and its 8 neighbours' features
    box_centre: np.ndarray   # (m, 4) the centre cell's centre (x, y, x, y), image fractions
    boxes: np.ndarray        # (m, 4) (x1, y1, x2, y2), image fractions of the input
    box_area: np.ndarray     # (m,) instance area in photo pixels (COCO's size ranges)
    box_is_class: np.ndarray  # (m,) bool: of the probed class
    cell_own: Optional[np.ndarray] = None  # (K g g,) the net's own class logit per slot, if read


# COCO's size ranges in photo pixels, as COCOeval names and bounds them (after "all")
SIZES = tuple((name, lo, hi) for name, (lo, hi) in
              zip(Params().areaRngLbl[1:], Params().areaRng[1:]))


def where_probe(train, val, lams):
    """{"position": (fit AUC, AP, scored AUC, AP), lam: (...) for each lam, and "network" (the
    net's own class output, nothing fitted) when both sets carry it}."""
    def scores(fit_scores, val_scores):
        return (roc_auc(train.cell_label, fit_scores), average_precision(train.cell_label, fit_scores),
                roc_auc(val.cell_label, val_scores), average_precision(val.cell_label, val_scores))

    out = {}
    if train.cell_own is not None and val.cell_own is not None:
        out["network"] = scores(train.cell_own, val.cell_own)
    w, b = fit_logistic(train.cell_pos, train.cell_label, 1e-3)
    out["position"] = scores(train.cell_pos @ w + b, val.cell_pos @ w + b)
    xt, xv = standardise(train.cells, val.cells)
    for lam in lams:
        w, b = fit_logistic(xt, train.cell_label, lam)
        out[lam] = scores(xt @ w + b, xv @ w + b)
    return out


def box_probe(train, val, lams):
    """{"mean offset": row, lam: row}; row = dict(train, val, small, medium, large: share of
    boxes within IoU 0.5; class: (hits, count) of the probed class on val)."""
    def row(pred_train, pred_val):
        hit_v = box_iou(pred_val, val.boxes) >= 0.5
        r = dict(train=float(np.mean(box_iou(pred_train, train.boxes) >= 0.5)),
                 val=float(hit_v.mean()),
                 cls=(int(hit_v[val.box_is_class].sum()), int(val.box_is_class.sum())))
        for size, lo, hi in SIZES:
            sel = (val.box_area >= lo) & (val.box_area < hi)
            r[size] = float(hit_v[sel].mean()) if sel.any() else float("nan")
        return r

    offsets = train.boxes - train.box_centre
    mean = offsets.mean(axis=0)
    out = {"mean offset": row(train.box_centre + mean, val.box_centre + mean)}
    xt, xv = standardise(train.box_feats, val.box_feats)
    for lam in lams:
        w, b = fit_ridge(xt, offsets, lam)
        out[lam] = row(train.box_centre + xt @ w + b, val.box_centre + xv @ w + b)
    return out


def format_report(where, boxes, class_name, train, val):
    """The two probes' tables, markdown."""
    k_train, k_val = int(train.cell_label.sum()), int(val.cell_label.sum())
    lines = [f"Where: cells holding a {class_name} box centre, {k_train} of {len(train.cell_label)} "
             f"(fit) / {k_val} of {len(val.cell_label)} (scored)", "",
             "| probe | fit AUC | fit AP | scored AUC | scored AP |", "|---|---:|---:|---:|---:|"]
    for key, (ta, tp, va, vp) in where.items():
        name = {"position": "position only", "network": "the network's own output"}.get(
            key) or f"features, lam {key:g}"
        lines.append(f"| {name} | {ta:.3f} | {tp:.3f} | {va:.3f} | {vp:.3f} |")
    lines += ["", f"Boxes: every class, at the cell holding the box centre: {len(train.boxes)} (fit) / "
              f"{len(val.boxes)} (scored); share within IoU 0.5", "",
              f"| probe | fit | scored | small | medium | large | {class_name} |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for key, r in boxes.items():
        name = key if key == "mean offset" else f"features, lam {key:g}"
        lines.append(f"| {name} | {r['train']:.3f} | {r['val']:.3f} | {r['small']:.3f} | "
                     f"{r['medium']:.3f} | {r['large']:.3f} | {r['cls'][0]} of {r['cls'][1]} |")
    return "\n".join(lines)
