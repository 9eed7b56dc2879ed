"""A run's output folder: frozen config, generated prototxts, git hash, snapshots, logs.

Everything a run needs to be reproduced or resumed is written here before it starts.
"""
import json
import os
import subprocess

from fassst.build_paths import REPO_ROOT
from fassst.config import to_dict
from fassst.errors import FassstError


def git_revision():
    try:
        rev = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO_ROOT, "status", "--porcelain"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def prepare(out_dir, cfg, extra=None):
    """Creates out_dir/{snapshots}, writes config.json (+ extra run settings) and git_rev.txt."""
    os.makedirs(os.path.join(out_dir, "snapshots"), exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(_record(cfg, extra), f, indent=2)
    with open(os.path.join(out_dir, "git_rev.txt"), "w") as f:
        f.write(git_revision() + "\n")


class RunDirConflict(FassstError):
    """The output folder holds a run that this one must not continue or overwrite."""


# Run settings that may change between a run and its resumption: the schedule's end (train on),
# the worker count (batches depend only on the seed and the batch index).
_MAY_CHANGE_ON_RESUME = ("max_iter", "workers")


def _record(cfg, extra):
    """What config.json holds, as JSON values (tuples as lists, so a read-back compares equal)."""
    return json.loads(json.dumps(dict(config=to_dict(cfg), run=extra or {})))


def check_resumable(out_dir, cfg, extra=None):
    """Raises RunDirConflict naming the differences when out_dir's run was started with another
    config or data: its snapshots would silently continue a different experiment."""
    path = os.path.join(out_dir, "config.json")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        saved = json.load(f)
    now = _record(cfg, extra)
    diffs = []
    for part, free in (("config", ()), ("run", _MAY_CHANGE_ON_RESUME)):
        old, new = saved.get(part, {}), now[part]
        diffs += [f"{part}.{k}" for k in sorted(set(old) | set(new))
                  if k not in free and old.get(k) != new.get(k)]
    if diffs:
        raise RunDirConflict(f"{path}: this run was started with different settings "
                             f"({', '.join(diffs)}); resuming would mix two experiments. Use "
                             f"another --out, or delete {out_dir} to start again")


def write_text(out_dir, name, text):
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def snapshot_prefix(out_dir, cfg):
    """The solver's snapshot_prefix: Caffe appends `_iter_<N>.caffemodel` / `.solverstate`."""
    return os.path.join(out_dir, "snapshots", cfg.name)


def snapshot_path(out_dir, cfg, it, ext):
    """The file Caffe writes for iteration `it`; ext "caffemodel" or "solverstate"."""
    return f"{snapshot_prefix(out_dir, cfg)}_iter_{it}.{ext}"


def snapshot_iter(path):
    """The iteration in a snapshot file's name."""
    return int(os.path.basename(path).rsplit("_iter_", 1)[1].split(".")[0])


def precise_bn_path(model):
    """Where precise BN writes the weights of snapshot `model` with exact statistics."""
    return model.replace(".caffemodel", "_precise_bn.caffemodel")


def newest_solverstate(out_dir):
    """Path of the highest-iteration .solverstate under out_dir/snapshots, or None."""
    snap = os.path.join(out_dir, "snapshots")
    if not os.path.isdir(snap):
        return None
    states = [f for f in os.listdir(snap) if f.endswith(".solverstate")]
    if not states:
        return None
    return os.path.join(snap, max(states, key=snapshot_iter))
