"""Trains a FASSST config through pycaffe's SGD solver.

A run folder (run_dir.py) holds the frozen config, the generated train/solver prototxts, the
git hash, snapshots, Caffe's own log (train.log, readable by Caffe's parse_log.py), the
per-iteration weighted losses (losses.csv) and their curve (loss_curve.png).

Interruptions lose nothing: Ctrl-C or SIGTERM snapshots at the current iteration before
stopping, and `resume=True` continues from the newest .solverstate. The data layer's batch k
depends only on (seed, k), and a resumed run starts it at the restored iteration, so a resumed
run ends with the same weights as an uninterrupted one.

Two stages when solver.freeze_iam_bn_at > 0: at iteration F = freeze_iam_bn_at * max_iter the
run snapshots, computes precise BatchNorm statistics (engine/precise_bn.py) and goes on with a
train net whose IAM BatchNorm uses them as fixed statistics (train_iam_bn_frozen.prototxt).
With 2 images per batch the IAM normalises 2 S^2 values per channel, and those batch
statistics change with the partner image: a regression to a few pixels cannot settle while its
features are rescaled at random. Measured (docs/DESIGN.md "Training"): box error on the demo
images 5.4 -> 2.9 px; the demo's mask AP50 62.2 -> 92.3. A resumed run re-enters the stage
its iteration belongs to, so it still ends with the same weights.
"""
import csv
import math
import os
import signal
import sys
import time

import caffe
from tqdm import tqdm

from fassst.engine import loss_curve, run_dir
from fassst.engine.caffe_log import CaffeFormatLog, caffe_log_to
from fassst.engine.precise_bn import recompute_bn_stats
from fassst.engine.train_net import train_net_param
from fassst.net.losses import loss_weights
from fassst.net.solver import build_solver



class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: every later iteration would be wasted."""


def lr_at(cfg, max_iter, it):
    """The solver's learning rate at iteration `it` (mirrors build_solver's policy)."""
    lr = cfg.solver.base_lr
    if cfg.solver.lr_policy == "multistep":
        lr *= 0.1 ** sum(it >= s for s in (max_iter * 2 // 3, max_iter * 8 // 9))
    return lr


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag the loop checks between iterations."""

    def __init__(self):
        self.signal = None

    def __enter__(self):
        self._old = {s: signal.signal(s, self._set) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _set(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def freeze_iter(cfg, max_iter):
    """The iteration from which the IAM's BatchNorm trains with fixed statistics, or None."""
    f = cfg.solver.freeze_iam_bn_at
    return max(1, int(max_iter * f)) if f > 0 else None


def _keep_rows_upto(csv_path, last_iter):
    """Drops loss rows past the restored iteration (a run killed without a snapshot wrote them)."""
    if not os.path.isfile(csv_path):
        return
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= last_iter]
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def train(cfg, out_dir, ann, images, weights=None, resume=False, seed=0, max_iter=None,
          workers=1, augment=None, gpu=None, quiet=False, precise_bn=True):
    """Runs (or resumes) training; returns dict(iter, stopped_by, final_weights).

    A run that reaches max_iter ends with precise BN (engine/precise_bn.py): final_weights is
    then the last snapshot with exact BatchNorm statistics, `<snapshot>_precise_bn.caffemodel`.
    """
    max_iter = max_iter or cfg.solver.max_iter
    augment = cfg.train_augment if augment is None else augment
    if not weights and not resume and cfg.freeze_backbone_bn:
        # Frozen BatchNorm with Caffe's initial statistics (mean 0, variance 0) scales every
        # activation by 1/sqrt(eps): ReLU6 saturates and no gradient passes.
        raise ValueError(f"{cfg.name}: freeze_backbone_bn needs the ImageNet statistics; pass "
                         f"ImageNet weights (--weights imagenet) or set freeze_backbone_bn false")
    state = run_dir.newest_solverstate(out_dir)
    if state and not resume:
        raise run_dir.RunDirConflict(f"{out_dir} already has snapshots "
                                     f"({os.path.basename(state)}): pass --resume to continue "
                                     f"it, or choose another --out")
    start = run_dir.snapshot_iter(state) if (state and resume) else 0
    settings = dict(ann=ann, images=images, weights=weights, seed=seed, max_iter=max_iter,
                    workers=workers, augment=augment)
    if start:
        run_dir.check_resumable(out_dir, cfg, settings)
    run_dir.prepare(out_dir, cfg, settings)
    freeze_at = freeze_iter(cfg, max_iter)
    frozen = freeze_at is not None and start >= freeze_at

    def make_solver(iam_bn_frozen, at_iter):
        """The solver of one stage; its data layer starts at iteration `at_iter`'s batch."""
        net = train_net_param(cfg, ann, images, seed=seed, workers=workers, augment=augment,
                              start_batch=at_iter * cfg.solver.iter_size, iam_bn_frozen=iam_bn_frozen)
        suffix = "_iam_bn_frozen" if iam_bn_frozen else ""
        train_path = run_dir.write_text(out_dir, f"train{suffix}.prototxt", str(net))
        param = build_solver(cfg, train_path, run_dir.snapshot_prefix(out_dir, cfg))
        param.max_iter = max_iter
        param.random_seed = seed
        return caffe.get_solver(run_dir.write_text(out_dir, f"solver{suffix}.prototxt", str(param))), param

    def stage_two_solver():
        """Stage 2 from the snapshot at freeze_at: precise BN of it (before the new solver's
        prefetch workers start), then that snapshot's solver state with those statistics."""
        model = run_dir.snapshot_path(out_dir, cfg, freeze_at, "caffemodel")
        fixed = run_dir.precise_bn_path(model)
        recompute_bn_stats(cfg, model, ann, images, fixed, seed=seed, quiet=True)
        solver, param = make_solver(True, freeze_at)
        solver.restore(run_dir.snapshot_path(out_dir, cfg, freeze_at, "solverstate"))
        solver.net.copy_from(fixed)
        return solver, param

    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()
    csv_path = os.path.join(out_dir, "losses.csv")
    log = CaffeFormatLog(os.path.join(out_dir, "train.log"))
    recent = []  # total losses of the last `display` iterations (Caffe's average_loss)
    weights_of = loss_weights(cfg)
    loss_names = tuple(weights_of)
    stopped_by = None
    with caffe_log_to(os.path.join(out_dir, "caffe.log")), _StopFlag() as stop:
        if frozen and start == freeze_at:  # stopped right at the switch
            solver, solver_param = stage_two_solver()
        else:
            solver, solver_param = make_solver(frozen, start)
            if start:
                solver.restore(state)
            elif weights:
                solver.net.copy_from(weights)
        if start:
            _keep_rows_upto(csv_path, start)
        log.solving(f"{cfg.name}_train", cfg.solver.lr_policy)
        new_csv = not os.path.isfile(csv_path) or start == 0
        with open(csv_path, "w" if new_csv else "a", newline="") as f, \
                tqdm(total=max_iter, initial=solver.iter, unit="it", file=sys.stdout,
                     disable=quiet, mininterval=1 if sys.stdout.isatty() else 10) as bar:
            writer = csv.writer(f)
            if new_csv:
                writer.writerow(["iter", *loss_names, "lr"])
            while solver.iter < max_iter:
                if solver.iter == freeze_at and not frozen:
                    if not os.path.isfile(run_dir.snapshot_path(out_dir, cfg, freeze_at, "solverstate")):
                        solver.snapshot()
                    del solver  # its prefetch workers end before precise BN starts its own
                    bar.write(f"[train] iteration {freeze_at}: precise BN, then the IAM's "
                              f"BatchNorm keeps those statistics")
                    solver, solver_param = stage_two_solver()
                    frozen = True
                t0 = time.perf_counter()
                solver.step(1)
                dt = time.perf_counter() - t0
                losses = {k: float(solver.net.blobs[k].data) * w for k, w in weights_of.items()}
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    # Resuming would replay the same batches into the same NaN, so say what to change.
                    raise TrainingDiverged(
                        f"{out_dir}: iteration {solver.iter}: {', '.join(bad)} not finite; training "
                        f"diverged. Lower solver.base_lr (now {cfg.solver.base_lr:g}) or set "
                        f"solver.clip_gradients in the config and start a new run (new --out); "
                        f"snapshots up to iteration {solver.iter - 1} are kept.")
                lr = lr_at(cfg, max_iter, solver.iter - 1)
                recent = (recent + [sum(losses.values())])[-solver_param.display:]
                if (solver.iter - 1) % solver_param.display == 0:
                    log.iteration(solver.iter - 1, sum(recent) / len(recent), lr,
                                  [(k, losses[k] / weights_of[k], weights_of[k]) for k in loss_names])
                writer.writerow([solver.iter, *(f"{losses[k]:.6g}" for k in loss_names), lr])
                f.flush()  # a killed run still leaves every finished iteration on disk
                bar.set_postfix_str(refresh=False, s=" ".join(f"{k[5:]}={v:.3f}" for k, v in losses.items())
                                    + f" lr={lr:g} img/s={cfg.solver.batch_size / dt:.1f}")
                bar.update(1)
                if stop.signal:
                    stopped_by = signal.Signals(stop.signal).name
                    break
            f.flush()
        if not os.path.isfile(run_dir.snapshot_path(out_dir, cfg, solver.iter, "caffemodel")):
            solver.snapshot()
    last_iter = solver.iter
    final = run_dir.snapshot_path(out_dir, cfg, last_iter, "caffemodel")
    if precise_bn and stopped_by is None:
        del solver  # its data layer's prefetch workers end before precise BN starts its own
        precise = run_dir.precise_bn_path(final)
        recompute_bn_stats(cfg, final, ann, images, precise, seed=seed, quiet=quiet,
                           iam_bn_frozen=frozen)
        final = precise
    loss_curve.plot(csv_path, os.path.join(out_dir, "loss_curve.png"), f"{cfg.name} training loss")
    return dict(iter=last_iter, stopped_by=stopped_by, final_weights=final)
