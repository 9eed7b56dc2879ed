"""Validation during training: COCO mask and box AP on a held-out set every `every` iterations
and at the end, and the best weights kept (detectron2's EvalHook and BestCheckpointer,
Ultralytics' best.pt).

Which weights are scored: what a user would deploy from that iteration. A completed run's
final weights are its last snapshot with precise BatchNorm statistics (engine/precise_bn.py),
so every evaluation takes the snapshot of its iteration through the same precise BN (train-net
batches of the run's seed, no augmentation) and runs the result in the deploy net. The
batch-statistics BatchNorms (the heads', and the IAM's until freeze_iam_bn_at) therefore use
exact averages for those very weights, not Caffe's moving averages, which lag the weights by
about 1000 iterations and scored 0 AP where precise statistics scored 19 (precise_bn.py). A run
with precise_bn=False deploys its raw snapshot, and so evaluates that (moving averages).

Files in the run folder:
  metrics.csv      one row per evaluation: iter, segm_AP, ..., bbox_AP75 (engine/val_metrics.py)
  train.log        Caffe's test-net lines for each ("Iteration N, Testing net (#0)", then
                   "Test net output #k: segm_AP = ..."), which parse_log reads as test rows
  snapshots/<name>_iter_N_precise_bn.caffemodel   the weights row N scored
  snapshots/best.caffemodel, best.json            those of the highest segm_AP (earliest on a tie)

Resume: rows past the restored iteration are dropped (their weights are not the ones the
resumed run will reach), and best.* are rebuilt from the rows kept if they disagree, so a
resumed run ends with the same metrics.csv and best.* as an uninterrupted one.
"""
import json
import os
import shutil

from fassst.engine import run_dir
from fassst.engine.evaluate import predict_dataset
from fassst.engine.hooks import Hook
from fassst.engine.precise_bn import recompute_bn_stats
from fassst.engine.val_metrics import BEST_BY, COLUMNS, best_row, read_metrics, write_metrics
from fassst.errors import read_json
from fassst.inference.predictor import Predictor


def evaluate_weights(cfg, weights, ann, images, gpu=None):
    """{column: COCO % rounded to 4 decimals} of `weights` in cfg's deploy net on ann/images."""
    metrics = predict_dataset(Predictor(cfg, weights, gpu=gpu), ann, images, quiet=True).evaluate()
    return {c: round(metrics[c.split("_")[0]][c.split("_")[1]], 4) for c in COLUMNS}


def best_paths(out_dir):
    snap = os.path.join(out_dir, "snapshots")
    return os.path.join(snap, "best.caffemodel"), os.path.join(snap, "best.json")


class EvalHook(Hook):
    """every: iterations between evaluations (0: only at the end). log: the CaffeFormatLog."""

    def __init__(self, val_ann, val_images, every, log, precise_bn=True, gpu=None):
        self.ann, self.images, self.every, self.log = val_ann, val_images, every, log
        self.precise_bn, self.gpu = precise_bn, gpu

    def before_train(self, t):
        self._csv = os.path.join(t.out_dir, "metrics.csv")
        self.rows = [r for r in read_metrics(self._csv) if r["iter"] <= t.start_iter]
        write_metrics(self._csv, self.rows)
        self._sync_best(t)
        # A run stopped at an evaluation iteration (by a signal, or killed during it) scores
        # that snapshot now: the loop below starts after it.
        it = t.start_iter
        if it and self._due(it, t) and not self._has(it):
            self._evaluate_snapshot(t, it)
        self._show(t)

    def _due(self, it, t):
        return self.every > 0 and it % self.every == 0 and it < t.max_iter

    def _has(self, it):
        return any(r["iter"] == it for r in self.rows)

    def after_step(self, t):
        # A signal's stop is not delayed by an evaluation: the resumed run makes it up.
        if self._due(t.iter, t) and t.stopped_by is None:
            if not os.path.isfile(run_dir.snapshot_path(t.out_dir, t.cfg, t.iter, "caffemodel")):
                t.solver.snapshot()
            self._evaluate_snapshot(t, t.iter)

    def after_train(self, t):
        # After FinalSnapshot and PreciseBN: final_weights are what the run delivers.
        if t.completed and not self._has(t.iter):
            self._record(t, t.iter, t.final_weights)

    def _scored_weights(self, t, it):
        """The file row `it` scores: snapshot `it`, through precise BN if the run uses it."""
        model = run_dir.snapshot_path(t.out_dir, t.cfg, it, "caffemodel")
        return run_dir.precise_bn_path(model) if self.precise_bn else model

    def _evaluate_snapshot(self, t, it):
        self._record(t, it, self._make_scored_weights(t, it))

    def _make_scored_weights(self, t, it):
        weights = self._scored_weights(t, it)
        if self.precise_bn:
            # Weights up to freeze_at come from stage 1 (IAM BatchNorm on batch statistics),
            # later ones from stage 2, whose IAM statistics are fixed and kept: as PreciseBN does.
            frozen = t.freeze_at is not None and it > t.freeze_at
            recompute_bn_stats(t.cfg, run_dir.snapshot_path(t.out_dir, t.cfg, it, "caffemodel"),
                               t.ann, t.images, weights, seed=t.seed, quiet=True,
                               iam_bn_frozen=frozen, skip_bad_images=t.skip_bad_images)
        return weights

    def _record(self, t, it, weights):
        row = dict(iter=it, **evaluate_weights(t.cfg, weights, self.ann, self.images, self.gpu))
        self.rows.append(row)
        write_metrics(self._csv, [row], append=True)
        self.log.test_outputs(it, [(c, row[c]) for c in COLUMNS])
        if best_row(self.rows) is row:
            self._write_best(t, row, weights)
        self._show(t)

    def _write_best(self, t, row, weights):
        """Model first, then the json naming it (each replaced whole): a run stopped between
        the two leaves a json that disagrees with metrics.csv, which the next start repairs."""
        model, meta = best_paths(t.out_dir)
        shutil.copyfile(weights, model + ".tmp")
        os.replace(model + ".tmp", model)
        with open(meta + ".tmp", "w") as f:
            json.dump(dict(row, metric=BEST_BY, weights=os.path.relpath(weights, t.out_dir),
                           val_ann=self.ann), f, indent=2)
        os.replace(meta + ".tmp", meta)
        t.best = dict(row, weights=model)

    def _sync_best(self, t):
        """best.* as the kept rows say: rebuilt from the best row's scored weights if best.json
        names another row (rows dropped on resume) or the run stopped while writing them."""
        model, meta = best_paths(t.out_dir)
        best = best_row(self.rows)
        if best is None:
            for path in (model, meta):
                if os.path.isfile(path):
                    os.remove(path)
            t.best = None
            return
        saved = read_json(meta) if os.path.isfile(meta) else {}
        if os.path.isfile(model) and all(saved.get(k) == best[k] for k in ("iter", BEST_BY)):
            t.best = dict(best, weights=model)
            return
        weights = self._scored_weights(t, best["iter"])
        if not os.path.isfile(weights):
            if not os.path.isfile(run_dir.snapshot_path(t.out_dir, t.cfg, best["iter"], "caffemodel")):
                raise run_dir.RunDirConflict(
                    f"{self._csv}: the best row (iteration {best['iter']}) has no weights left "
                    f"({weights}) to restore best.caffemodel from; restore the file, or delete "
                    f"that row to let the next best take its place")
            weights = self._make_scored_weights(t, best["iter"])  # precise BN is deterministic
        self._write_best(t, best, weights)

    def _show(self, t):
        if self.rows:
            b = best_row(self.rows)
            t.status["val"] = (f"AP={self.rows[-1][BEST_BY]:.1f} "
                               f"best={b[BEST_BY]:.1f}@{b['iter']}")

