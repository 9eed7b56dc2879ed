"""A run's metrics.csv: one row per validation (engine/eval_hook.py), read back by the hook on
resume and by the loss curve's AP panel.

    iter, segm_AP, segm_AP50, segm_AP75, bbox_AP, bbox_AP50, bbox_AP75   (COCO %, 4 decimals)
"""
import csv
import os

COLUMNS = ("segm_AP", "segm_AP50", "segm_AP75", "bbox_AP", "bbox_AP50", "bbox_AP75")
BEST_BY = "segm_AP"  # mask AP picks the best weights


def read_metrics(path):
    """The rows as dicts (iter int, the rest float); [] if there is no file."""
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [dict(iter=int(r["iter"]), **{c: float(r[c]) for c in COLUMNS})
                for r in csv.DictReader(f)]


def write_metrics(path, rows, append=False):
    """Writes rows (a header first unless appending)."""
    with open(path, "a" if append else "w", newline="") as f:
        w = csv.writer(f)
        if not append:
            w.writerow(["iter", *COLUMNS])
        w.writerows([r["iter"], *(f"{r[c]:.4f}" for c in COLUMNS)] for r in rows)


def best_row(rows):
    """The row with the highest BEST_BY, the earliest among equals; None without rows."""
    best = None
    for r in rows:
        if best is None or r[BEST_BY] > best[BEST_BY]:
            best = r
    return best
