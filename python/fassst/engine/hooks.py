"""Training hooks: each does one job around the loop in engine/trainer.py (detectron2's shape).

A hook has four methods, each given the Trainer: before_train, before_step, after_step and
after_train (called in a `finally`, so it runs after an error too: check `t.error`).
"""
import csv
import math
import os
import signal

from fassst.diagnostics.spread import COLLAPSED, SpreadProbe, collapsed
from fassst.diagnostics.stage_stats import COLUMNS as STAGE_COLUMNS, relu6_rows, stage_rows
from fassst.errors import FassstError
from fassst.engine import loss_curve, run_dir
from fassst.engine.precise_bn import recompute_bn_stats


class Hook:
    def before_train(self, t):
        pass

    def before_step(self, t):
        pass

    def after_step(self, t):
        pass

    def after_train(self, t):
        pass


class TrainingDiverged(FassstError, RuntimeError):
    """A loss became NaN or infinite: every later iteration would be wasted."""


class StopOnSignal(Hook):
    """SIGINT/SIGTERM end the run after the current iteration (the final snapshot follows)."""

    def before_train(self, t):
        self._signal = None
        self._old = {s: signal.signal(s, self._set) for s in (signal.SIGINT, signal.SIGTERM)}

    def _set(self, signum, frame):
        self._signal = signum

    def after_step(self, t):
        if self._signal:
            t.stopped_by = signal.Signals(self._signal).name

    def after_train(self, t):
        for s, h in self._old.items():
            signal.signal(s, h)


class IamBnStage(Hook):
    """At iteration freeze_at the IAM's BatchNorm switches to precise, fixed statistics
    (solver.freeze_iam_bn_at; the trainer's enter_stage_two does the work)."""

    def __init__(self, freeze_at):
        self.freeze_at = freeze_at

    def before_step(self, t):
        if t.iter == self.freeze_at and not t.iam_bn_frozen:
            t.write(f"[train] iteration {self.freeze_at}: precise BN, then the IAM's BatchNorm "
                    f"keeps those statistics")
            t.enter_stage_two(snapshot_first=True)


class DivergenceStop(Hook):
    """A NaN/inf loss stops the run at once, naming the setting to change."""

    def after_step(self, t):
        bad = [k for k, v in t.losses.items() if not math.isfinite(v)]
        if bad:
            # Resuming would replay the same batches into the same NaN, so say what to change.
            raise TrainingDiverged(
                f"{t.out_dir}: iteration {t.iter}: {', '.join(bad)} not finite; training "
                f"diverged. Lower solver.base_lr (now {t.cfg.solver.base_lr:g}) or set "
                f"solver.clip_gradients in the config and start a new run (new --out); "
                f"snapshots up to iteration {t.iter - 1} are kept.")


class LossWriter(Hook):
    """losses.csv (every iteration), train.log in `caffe train`'s format (every `display`),
    and the progress bar's line."""

    def __init__(self, log, display):
        self.log, self.display = log, display

    def before_train(self, t):
        path = os.path.join(t.out_dir, "losses.csv")
        if t.start_iter:
            _keep_rows_upto(path, t.start_iter)
        new = not os.path.isfile(path) or t.start_iter == 0
        self._file = open(path, "w" if new else "a", newline="")
        self._csv = csv.writer(self._file)
        if new:
            self._csv.writerow(["iter", *t.loss_weights, "lr"])
        self._recent = []  # total losses of the last `display` iterations (Caffe's average_loss)
        self.log.solving(f"{t.cfg.name}_train", t.cfg.solver.lr_policy)

    def after_step(self, t):
        it, lr, w = t.iter - 1, t.lr, t.loss_weights
        self._recent = (self._recent + [sum(t.losses.values())])[-self.display:]
        if it % self.display == 0:
            self.log.iteration(it, sum(self._recent) / len(self._recent), lr,
                               [(k, t.losses[k] / w[k], w[k]) for k in w])
        self._csv.writerow([t.iter, *(f"{t.losses[k]:.6g}" for k in w), lr])
        self._file.flush()  # a killed run still leaves every finished iteration on disk
        t.status["losses"] = " ".join(f"{k[5:]}={v:.3f}" for k, v in t.losses.items())
        t.status["lr"] = f"lr={lr:g} img/s={t.cfg.solver.batch_size / t.step_seconds:.1f}"

    def after_train(self, t):
        self._file.close()


def _keep_rows_upto(csv_path, last_iter):
    """Drops loss rows past the restored iteration (a run killed without a snapshot wrote them)."""
    if not os.path.isfile(csv_path):
        return
    with open(csv_path) as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= last_iter]
    with open(csv_path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


class CollapseWatch(Hook):
    """Warns as soon as a watched blob stops depending on the image.

    Every iteration the train net's watched blobs (backbone stage ends, the IAM's last conv, the
    pyramid levels, the IAM's class and box outputs) go into a SpreadProbe over the last
    `window` images; every `every` iterations from `start` their spread across those images is
    written to spread.csv, and any blob whose spread falls below COLLAPSED of its mean |a| is
    named in the log and on the progress bar, with what to try. A collapsed run otherwise
    trains on to the end with falling losses and predicts the same thing for every photo.
    stop: end the run there (snapshot kept, t.stopped_by "collapse") instead of training on: a
    long GPU run should not spend days on a dead backbone. Resuming without it trains on.
    """

    def __init__(self, blobs, log, every=50, start=100, window=32, stop=False):
        self.blobs, self.log = tuple(blobs), log
        self.every, self.start, self.window, self.stop = every, start, window, stop
        self.warned = {}  # blob -> first iteration it was reported

    def before_train(self, t):
        self.probe = SpreadProbe(self.blobs, window=self.window)
        self._path = os.path.join(t.out_dir, "spread.csv")
        if t.start_iter == 0 or not os.path.isfile(self._path):
            with open(self._path, "w", newline="") as f:
                csv.writer(f).writerow(["iter", *self.blobs])
        else:
            _keep_rows_upto(self._path, t.start_iter)

    def after_step(self, t):
        net = t.solver.net
        # Only the steps whose images can still be in the window at the next check are copied.
        if (-t.iter) % self.every * net.blobs["data"].num < self.window:
            self.probe.add_net(net)
        if t.iter < self.start or t.iter % self.every:
            return
        report = self.probe.report()
        with open(self._path, "a", newline="") as f:
            csv.writer(f).writerow([t.iter, *(f"{report[b][2]:.4g}" if b in report else ""
                                              for b in self.blobs)])
        dead = collapsed(report)
        t.status["collapse"] = f"COLLAPSED: {','.join(dead)}" if dead else ""
        new = [b for b in dead if b not in self.warned]
        for b in new:
            self.warned[b] = t.iter
        if new:
            level, spread, ratio, k = report[new[0]]
            message = (f"iteration {t.iter}: {', '.join(new)} no longer depend(s) on the image "
                       f"(spread across {k} images {ratio:.3g} of its level {level:.3g}; below "
                       f"{COLLAPSED}): {_what_to_try(new)}")
            self.log.warning(message)
            t.write(f"[collapse] {message}")
        if dead and self.stop:
            t.stopped_by = "collapse"


class StageStats(Hook):
    """stages.csv: every `every` iterations, per part of the net (each backbone module, the
    pyramid levels, the IAM, the tail) its weight norm, the size of the step just taken, the
    gradient reaching its output and its ReLU6 units at 0 or 6 (diagnostics/stage_stats.py);
    relu6.csv: every ReLU6 of the backbone, at 0 and at 6. What the collapse watch names, these
    explain."""

    def __init__(self, every=50):
        self.every = every

    def before_train(self, t):
        self._paths = {name: os.path.join(t.out_dir, name) for name in ("stages.csv", "relu6.csv")}
        heads = {"stages.csv": ["iter", *STAGE_COLUMNS],
                 "relu6.csv": ["iter", "part", "blob", "at0", "at6"]}
        for name, path in self._paths.items():
            if t.start_iter == 0 or not os.path.isfile(path):
                with open(path, "w", newline="") as f:
                    csv.writer(f).writerow(heads[name])
            else:
                _keep_rows_upto(path, t.start_iter)

    def after_step(self, t):
        if t.iter % self.every and t.iter != 1:
            return
        net = t.solver.net
        rows = stage_rows(net)
        with open(self._paths["stages.csv"], "a", newline="") as f:
            w = csv.writer(f)
            for r in rows:
                w.writerow([t.iter, r["part"], *(f"{r[c]:.4g}" for c in STAGE_COLUMNS[1:])])
        backbone = {r["part"] for r in rows if r["part"].startswith("features.")}
        with open(self._paths["relu6.csv"], "a", newline="") as f:
            w = csv.writer(f)
            for part, blob, at0, at6 in relu6_rows(net, backbone):
                w.writerow([t.iter, part, blob, f"{at0:.4g}", f"{at6:.4g}"])


def _what_to_try(blobs):
    if any(b.startswith("features.") for b in blobs):
        return ("fine-tuning is destroying the pretrained backbone; keep fold_backbone_bn on, "
                "lower backbone_lr_mult or solver.base_lr, or freeze stages "
                "(freeze_backbone_stages)")
    return ("the head predicts the same for every image; set cls_prior (0.01), lower "
            "solver.base_lr, and check the data (scripts/spread.py shows every blob)")


class FinalSnapshot(Hook):
    """A run that ends (schedule done or stopped by a signal) leaves a snapshot of its last
    iteration; a run ended by an error leaves the ones it has."""

    def after_train(self, t):
        if t.error is None and not os.path.isfile(
                run_dir.snapshot_path(t.out_dir, t.cfg, t.iter, "caffemodel")):
            t.solver.snapshot()
        t.final_weights = run_dir.snapshot_path(t.out_dir, t.cfg, t.iter, "caffemodel")


class PreciseBN(Hook):
    """A completed run ends with exact BatchNorm statistics for its final weights
    (engine/precise_bn.py); final_weights becomes `<snapshot>_precise_bn.caffemodel`."""

    def after_train(self, t):
        if not t.completed:
            return
        t.release_solver()  # its data layer's prefetch workers end before precise BN starts its own
        precise = run_dir.precise_bn_path(t.final_weights)
        recompute_bn_stats(t.cfg, t.final_weights, t.ann, t.images, precise, seed=t.seed,
                           quiet=t.quiet, iam_bn_frozen=t.iam_bn_frozen,
                           skip_bad_images=t.skip_bad_images)
        t.final_weights = precise


class LossCurve(Hook):
    """loss_curve.png: the losses, and the validation AP under them if the run has any."""

    def after_train(self, t):
        if t.error is None:
            loss_curve.plot(os.path.join(t.out_dir, "losses.csv"),
                            os.path.join(t.out_dir, "loss_curve.png"), f"{t.cfg.name} training loss",
                            metrics_csv=os.path.join(t.out_dir, "metrics.csv"))
