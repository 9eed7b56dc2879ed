"""Trains a FASSST config through pycaffe's SGD solver.

A run folder (run_dir.py) holds the frozen config, the generated train/solver prototxts, the
git hash, snapshots, Caffe's own log (train.log, readable by Caffe's parse_log.py), the
per-iteration weighted losses (losses.csv) and their curve (loss_curve.png).

Interruptions lose nothing: Ctrl-C or SIGTERM snapshots at the current iteration before
stopping, and `resume=True` continues from the newest .solverstate. The data layer's batch k
depends only on (seed, k), and a resumed run starts it at the restored iteration, so a resumed
run ends with the same weights as an uninterrupted one.
"""
import csv
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
    start = int(state.rsplit("_iter_", 1)[1].split(".")[0]) if (state and resume) else 0
    settings = dict(ann=ann, images=images, weights=weights, seed=seed, max_iter=max_iter,
                    workers=workers, augment=augment)
    if start:
        run_dir.check_resumable(out_dir, cfg, settings)
    run_dir.prepare(out_dir, cfg, settings)
    net = train_net_param(cfg, ann, images, seed=seed, workers=workers, augment=augment,
                          start_batch=start * cfg.solver.iter_size)
    train_path = run_dir.write_text(out_dir, "train.prototxt", str(net))
    solver_param = build_solver(cfg, train_path, os.path.join(out_dir, "snapshots", cfg.name))
    solver_param.max_iter = max_iter
    solver_param.random_seed = seed
    solver_path = run_dir.write_text(out_dir, "solver.prototxt", str(solver_param))

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
        solver = caffe.get_solver(solver_path)
        if start:
            solver.restore(state)
            _keep_rows_upto(csv_path, start)
        elif weights:
            solver.net.copy_from(weights)
        log.solving(net.name, cfg.solver.lr_policy)
        new_csv = not os.path.isfile(csv_path) or start == 0
        with open(csv_path, "w" if new_csv else "a", newline="") as f, \
                tqdm(total=max_iter, initial=solver.iter, unit="it", file=sys.stdout,
                     disable=quiet, mininterval=1 if sys.stdout.isatty() else 10) as bar:
            writer = csv.writer(f)
            if new_csv:
                writer.writerow(["iter", *loss_names, "lr"])
            while solver.iter < max_iter:
                t0 = time.perf_counter()
                solver.step(1)
                dt = time.perf_counter() - t0
                losses = {k: float(solver.net.blobs[k].data) * w for k, w in weights_of.items()}
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
        if not os.path.isfile(os.path.join(out_dir, "snapshots", f"{cfg.name}_iter_{solver.iter}.caffemodel")):
            solver.snapshot()
    last_iter = solver.iter
    final = os.path.join(out_dir, "snapshots", f"{cfg.name}_iter_{last_iter}.caffemodel")
    if precise_bn and stopped_by is None:
        del solver  # its data layer's prefetch workers end before precise BN starts its own
        precise = final.replace(".caffemodel", "_precise_bn.caffemodel")
        recompute_bn_stats(cfg, final, ann, images, precise, seed=seed, quiet=quiet)
        final = precise
    loss_curve.plot(csv_path, os.path.join(out_dir, "loss_curve.png"), f"{cfg.name} training loss")
    return dict(iter=last_iter, stopped_by=stopped_by, final_weights=final)
