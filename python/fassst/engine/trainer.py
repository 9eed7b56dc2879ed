"""Trains a FASSST config through pycaffe's SGD solver: a short loop plus hooks (engine/hooks.py).

A run folder (run_dir.py) holds the frozen config, the generated train/solver prototxts, the
git hash, snapshots, Caffe's own log (caffe.log), a log in `caffe train`'s format (train.log,
readable by Caffe's parse_log.py), the per-iteration weighted losses (losses.csv), the
spread of the watched blobs across images (spread.csv) and the loss curve (loss_curve.png).
With a validation set, also its COCO AP every K iterations and at the end (metrics.csv, the
test-net lines of train.log, the AP panel of loss_curve.png) and the best weights
(snapshots/best.caffemodel, best.json): engine/eval_hook.py.

Interruptions lose nothing: Ctrl-C or SIGTERM snapshots at the current iteration before
stopping, and `resume=True` continues from the newest .solverstate. The data layer's batch k
depends only on (seed, k), and a resumed run starts it at the restored iteration, so a resumed
run ends with the same weights as an uninterrupted one.

Two stages when solver.freeze_iam_bn_at > 0: at iteration F = freeze_iam_bn_at * max_iter the
run snapshots, computes precise BatchNorm statistics (engine/precise_bn.py) and goes on with a
train net whose IAM BatchNorm uses them as fixed statistics (train_iam_bn_frozen.prototxt).
A resumed run re-enters the stage its iteration belongs to, so it still ends with the same
weights.
"""
import os
import sys
import time

import caffe
from tqdm import tqdm

from fassst.data.coco_dataset import CocoDataset
from fassst.diagnostics.spread import watched_blobs
from fassst.engine import hooks as H
from fassst.engine import run_dir
from fassst.engine.caffe_log import CaffeFormatLog, caffe_log_to
from fassst.engine.eval_hook import EvalHook
from fassst.engine.precise_bn import recompute_bn_stats
from fassst.engine.train_net import train_net_param
from fassst.errors import InputError
from fassst.net.iam import set_class_prior
from fassst.net.losses import loss_weights
from fassst.net.solver import build_solver, lr_at

TrainingDiverged = H.TrainingDiverged  # re-exported: scripts catch it from here


def freeze_iter(cfg, max_iter):
    """The iteration from which the IAM's BatchNorm trains with fixed statistics, or None."""
    f = cfg.solver.freeze_iam_bn_at
    return max(1, int(max_iter * f)) if f > 0 else None


class Trainer:
    """The state a run's hooks share: config, data, solver, iteration, this step's losses."""

    def __init__(self, cfg, out_dir, ann, images, *, seed, max_iter, workers, augment, quiet,
                 skip_bad_images=False):
        self.cfg, self.out_dir, self.ann, self.images = cfg, out_dir, ann, images
        self.skip_bad_images = skip_bad_images
        self.seed, self.max_iter, self.workers, self.augment = seed, max_iter, workers, augment
        self.quiet = quiet
        self.loss_weights = loss_weights(cfg)
        self.freeze_at = freeze_iter(cfg, max_iter)
        self.iam_bn_frozen = False
        self.solver = self.solver_param = None
        self.start_iter = self._last_iter = 0
        self.losses, self.lr, self.step_seconds = {}, cfg.solver.base_lr, 0.0
        self.status = {}  # hook -> text shown after the progress bar
        self.stopped_by = self.error = self.final_weights = None
        self.best = None  # EvalHook: the best validation row, with its weights
        self._bar = None

    @property
    def iter(self):
        return self.solver.iter if self.solver is not None else self._last_iter

    @property
    def completed(self):
        return self.error is None and self.stopped_by is None and self.iter >= self.max_iter

    def write(self, text):
        (self._bar.write if self._bar else print)(text)

    def make_solver(self, iam_bn_frozen, at_iter):
        """The solver of one stage; its data layer starts at iteration `at_iter`'s batch."""
        self.release_solver()
        cfg, out = self.cfg, self.out_dir
        net = train_net_param(cfg, self.ann, self.images, seed=self.seed, workers=self.workers,
                              augment=self.augment, start_batch=at_iter * cfg.solver.iter_size,
                              iam_bn_frozen=iam_bn_frozen, skip_bad_images=self.skip_bad_images)
        suffix = "_iam_bn_frozen" if iam_bn_frozen else ""
        train_path = run_dir.write_text(out, f"train{suffix}.prototxt", str(net))
        param = build_solver(cfg, train_path, run_dir.snapshot_prefix(out, cfg), self.max_iter)
        param.random_seed = self.seed
        self.solver_param = param
        self.solver = caffe.get_solver(run_dir.write_text(out, f"solver{suffix}.prototxt", str(param)))
        self.iam_bn_frozen = iam_bn_frozen

    def release_solver(self):
        """Drops the solver (and so its data layer's prefetch workers)."""
        if self.solver is not None:
            self._last_iter = self.solver.iter
        self.solver = None

    def enter_stage_two(self, snapshot_first):
        """Stage 2 from the snapshot at freeze_at: precise BN of it (before the new solver's
        prefetch workers start), then that snapshot's solver state with those statistics."""
        cfg, out, at = self.cfg, self.out_dir, self.freeze_at
        state = run_dir.snapshot_path(out, cfg, at, "solverstate")
        if snapshot_first and not os.path.isfile(state):
            self.solver.snapshot()
        self.release_solver()
        model = run_dir.snapshot_path(out, cfg, at, "caffemodel")
        fixed = run_dir.precise_bn_path(model)
        recompute_bn_stats(cfg, model, self.ann, self.images, fixed, seed=self.seed, quiet=True,
                           skip_bad_images=self.skip_bad_images)
        self.make_solver(True, at)
        self.solver.restore(state)
        self.solver.net.copy_from(fixed)

    def start(self, weights, resume_state):
        """The solver at the run's first iteration: restored from a snapshot, or new."""
        start = run_dir.snapshot_iter(resume_state) if resume_state else 0
        self.start_iter = start
        frozen = self.freeze_at is not None and start >= self.freeze_at
        if frozen and start == self.freeze_at:  # stopped right at the switch
            self.enter_stage_two(snapshot_first=False)
            return
        self.make_solver(frozen, start)
        if start:
            self.solver.restore(resume_state)
        else:
            if weights:
                self.solver.net.copy_from(weights)
            set_class_prior(self.solver.net, self.cfg)

    def run_step(self):
        t0 = time.perf_counter()
        self.solver.step(1)
        self.step_seconds = time.perf_counter() - t0
        net = self.solver.net
        self.losses = {k: float(net.blobs[k].data) * w for k, w in self.loss_weights.items()}
        self.lr = lr_at(self.cfg.solver, self.max_iter, self.iter - 1)

    def train(self, hooks):
        """before_train; per iteration before_step, run_step, after_step; after_train (always)."""
        with tqdm(total=self.max_iter, initial=self.iter, unit="it", file=sys.stdout,
                  disable=self.quiet, mininterval=1 if sys.stdout.isatty() else 10) as bar:
            self._bar = bar
            try:
                for h in hooks:
                    h.before_train(self)
                while self.iter < self.max_iter and self.stopped_by is None:
                    for h in hooks:
                        h.before_step(self)
                    self.run_step()
                    for h in hooks:
                        h.after_step(self)
                    bar.set_postfix_str(" ".join(v for v in self.status.values() if v), refresh=False)
                    bar.update(1)
            except BaseException as e:
                self.error = e
                raise
            finally:
                for h in hooks:
                    h.after_train(self)
                self._bar = None


def default_hooks(cfg, log, freeze_at, precise_bn=True, val=None, gpu=None, stop_on_collapse=False):
    """val: dict(ann, images, every) of a validation set, or None."""
    # DivergenceStop before LossWriter: a NaN iteration never reaches losses.csv.
    hooks = [H.StopOnSignal(), H.DivergenceStop(), H.LossWriter(log, display=20),
             H.CollapseWatch(watched_blobs(cfg, "train"), log, stop=stop_on_collapse),
             H.StageStats()]
    if freeze_at is not None:
        hooks.append(H.IamBnStage(freeze_at))
    hooks.append(H.FinalSnapshot())
    if precise_bn:
        hooks.append(H.PreciseBN())
    if val:  # after PreciseBN: the final evaluation scores the weights the run delivers
        hooks.append(EvalHook(val["ann"], val["images"], val["every"], log, precise_bn, gpu))
    hooks.append(H.LossCurve())
    return hooks


def train(cfg, out_dir, ann, images, weights=None, resume=False, seed=0, max_iter=None,
          workers=1, augment=None, gpu=None, quiet=False, precise_bn=True, skip_bad_images=False,
          val_ann=None, val_images=None, eval_every=None, stop_on_collapse=False):
    """Runs (or resumes) training; returns dict(iter, stopped_by, final_weights, best_weights).

    skip_bad_images: unreadable training images are skipped and counted instead of failing.
    A run that reaches max_iter ends with precise BN (engine/precise_bn.py): final_weights is
    then the last snapshot with exact BatchNorm statistics, `<snapshot>_precise_bn.caffemodel`.
    val_ann/val_images: a validation set (same categories as ann), scored every eval_every
    iterations (default: every snapshot, solver.snapshot_iters; 0: only at the end) and at
    the end; best_weights is then snapshots/best.caffemodel (engine/eval_hook.py).
    stop_on_collapse: a blob the collapse watch reports ends the run (stopped_by "collapse",
    its snapshot kept; `resume` without it trains on).
    """
    max_iter = max_iter or cfg.solver.max_iter
    val = None
    if val_ann:
        every = cfg.solver.snapshot_iters if eval_every is None else eval_every
        val = dict(ann=val_ann, images=val_images, every=check_val_set(ann, images, val_ann,
                                                                       val_images, every))
    augment = cfg.train_augment if augment is None else augment
    if not weights and not resume and cfg.freeze_backbone_bn and not cfg.fold_backbone_bn:
        # Frozen BatchNorm with Caffe's initial statistics (mean 0, variance 0) scales every
        # activation by 1/sqrt(eps): ReLU6 saturates and no gradient passes.
        raise ValueError(f"{cfg.name}: freeze_backbone_bn needs the ImageNet statistics; pass "
                         f"ImageNet weights (--weights imagenet) or set freeze_backbone_bn false")
    state = run_dir.newest_solverstate(out_dir)
    if state and not resume:
        raise run_dir.RunDirConflict(f"{out_dir} already has snapshots "
                                     f"({os.path.basename(state)}): pass --resume to continue "
                                     f"it, or choose another --out")
    settings = dict(ann=ann, images=images, weights=weights, seed=seed, max_iter=max_iter,
                    workers=workers, augment=augment, val_ann=val_ann,
                    val_images=val_images if val else None, eval_every=val["every"] if val else None)
    if state and resume:
        run_dir.check_resumable(out_dir, cfg, settings)
    run_dir.prepare(out_dir, cfg, settings)

    if gpu is None:
        caffe.set_mode_cpu()
    else:
        caffe.set_device(gpu)
        caffe.set_mode_gpu()
    t = Trainer(cfg, out_dir, ann, images, seed=seed, max_iter=max_iter, workers=workers,
                augment=augment, quiet=quiet, skip_bad_images=skip_bad_images)
    log = CaffeFormatLog(os.path.join(out_dir, "train.log"))
    with caffe_log_to(os.path.join(out_dir, "caffe.log")):
        t.start(weights, state if resume else None)
        t.train(default_hooks(cfg, log, t.freeze_at, precise_bn, val, gpu, stop_on_collapse))
    return dict(iter=t.iter, stopped_by=t.stopped_by, final_weights=t.final_weights,
                best_weights=t.best["weights"] if t.best else None)


def check_val_set(ann, images, val_ann, val_images, every):
    """`every` if the validation set can score a model trained on ann; InputError naming the
    file otherwise (its classes must be the training set's, with some ground truth to find)."""
    if every < 0:
        raise InputError(f"eval_every must be >= 0 (0: only at the end), got {every}")
    if not val_images:
        raise InputError(f"{val_ann}: a validation set needs its image folder too")
    train, val = CocoDataset(ann, images), CocoDataset(val_ann, val_images)
    if (train.category_ids, train.class_names) != (val.category_ids, val.class_names):
        raise InputError(f"{val_ann}: categories {list(zip(val.category_ids, val.class_names))} differ "
                         f"from those of the training set {ann}: class indices would not match")
    if not any(not a.get("iscrowd", 0) for a in val.coco.dataset.get("annotations", [])):
        raise InputError(f"{val_ann}: no annotations to score against (AP is undefined)")
    return every
