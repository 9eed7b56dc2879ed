"""Reproduction check: measured metrics against the paper's numbers, rows of
[task, metric, value, tolerance, source] from a json file (targets.json next to this module).

A row misses when its metric is absent or NaN, or |measured - value| > tolerance. A task with
no row is an error, never a silent pass.
"""
import math
import os
from typing import NamedTuple, Optional

from fassst.errors import InputError, read_json

DEFAULT_TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "targets.json")


class Target(NamedTuple):
    task: str
    metric: str  # "/" path into the metrics dict, e.g. "segm/AP"
    value: float
    tolerance: float
    source: str


class Outcome(NamedTuple):
    target: Target
    measured: Optional[float]
    ok: bool


def load_targets(path=DEFAULT_TARGETS):
    doc = read_json(path, "targets file")
    rows = doc.get("targets") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise InputError(f"{path}: a targets file is a JSON object with a list 'targets'")
    targets = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 5:
            raise InputError(f"{path}: target {i} must be [task, metric, value, tolerance, "
                             f"source], got {row}")
        t = Target(str(row[0]), str(row[1]), float(row[2]), float(row[3]), str(row[4]))
        if t.tolerance < 0:
            raise InputError(f"{path}: target {i} has a negative tolerance {t.tolerance}")
        targets.append(t)
    return targets


def lookup(metrics, path):
    """The number at a "/" path in the metrics dict, or None if absent or not a number."""
    node = metrics
    for key in path.split("/"):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return float(node) if isinstance(node, (int, float)) else None


def check(metrics, task, targets):
    """Outcome of every target row of `task`; InputError (a ValueError) if the task has none."""
    rows = [t for t in targets if t.task == task]
    if not rows:
        known = sorted({t.task for t in targets})
        raise InputError(f"no reproduction target for task {task!r}; known tasks: {known}")
    outcomes = []
    for t in rows:
        measured = lookup(metrics, t.metric)
        ok = (measured is not None and not math.isnan(measured)
              and abs(measured - t.value) <= t.tolerance)
        outcomes.append(Outcome(t, measured, ok))
    return outcomes


def format_outcomes(outcomes):
    lines = []
    for o in outcomes:
        got = "absent" if o.measured is None else f"{o.measured:.2f}"
        lines.append(f"[{'ok' if o.ok else 'MISS'}] {o.target.task} {o.target.metric}: "
                     f"measured {got}, paper {o.target.value} +- {o.target.tolerance} "
                     f"({o.target.source})")
    return "\n".join(lines)
