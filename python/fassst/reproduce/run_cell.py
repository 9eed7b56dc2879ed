"""Runs one cell: train (or resume), evaluate on the paper's split, write COCO test-dev
predictions, benchmark speed, count cost. Each stage leaves its record in the cell's folder and
is read back instead of redone, so an interrupted cell resumes where it stopped and a finished
one (result.json) is reused by every table that shares it.

    WORK/cells/<cell id>/
        cell.json          what the cell is (config overrides, data, init, schedule, seed)
        config.json        the frozen config (a config file: scripts/*.py --config take it)
        init_from_<id>.caffemodel   a COCO model's weights that fit this net (Cityscapes cells)
        train/             the run folder (engine/run_dir.py); train.json when it finished
        eval/              metrics.{json,md}, val_results.json (COCO results format), cityscapes_eval/
        test_dev/          detections_test-dev2017_fassst_results.{json,zip} (COCO cells)
        bench/             the speed benchmark's nets and bench.json
        cost.json          multiply-adds, parameters, caffemodel size (n ROIs through the tail)
        result.json        all of it, with the commands; written last

The model scored is the run's final weights (precise BN). When training with validation
(best.caffemodel) is available, `eval_weights` is where a cell would choose it, and only when
it was selected on a split other than the one reported.
"""
import dataclasses
import json
import os
import time
from typing import Callable, Optional

from fassst.bench import cost, net_bench
from fassst.config import to_dict
from fassst.data.coco_dataset import CocoDataset
from fassst.engine.evaluate import predict_dataset
from fassst.engine.run_dir import git_revision, newest_solverstate, snapshot_iter
from fassst.engine.trainer import train
from fassst.evaluation import report
from fassst.inference.predictor import Predictor
from fassst.reproduce.data_root import DataRoot
from fassst.reproduce.paths import rel
from fassst.reproduce.testdev import write_submission
from fassst.reproduce.transfer import transfer_weights
from fassst.weights.convert_mobilenet_v2 import imagenet_weights


@dataclasses.dataclass
class RunContext:
    data_root: DataRoot
    work_dir: str
    settings: dict             # run_settings.json's "full" or "smoke"
    command: str               # the reproduce command running now: it produced what it runs
    gpu: Optional[int] = None
    quiet: bool = True
    log: Callable = print


def cell_dir(ctx, cell):
    return os.path.join(ctx.work_dir, "cells", cell.id)


def _read(path):
    with open(path) as f:
        return json.load(f)


def _write(path, obj, indent=1):
    """Written to a temporary name and renamed: a record exists whole or not at all."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=indent)
    os.replace(path + ".tmp", path)
    return obj


def _stage(path, compute):
    return _read(path) if os.path.isfile(path) else _write(path, compute())


def describe(cell):
    return dict(id=cell.id, base=cell.spec.base, overrides=dict(cell.overrides), data=cell.data,
                init=cell.init, init_cell=cell.init_cell, max_iter=cell.max_iter, seed=cell.seed,
                smoke=cell.smoke, note=cell.spec.note)


def run_cell(cell, ctx, done):
    """The cell's result (result.json), computing what is missing; None if training was
    stopped (Ctrl-C / SIGTERM: run again to resume). done: {cell id: result} of the cells run
    before, among them the one whose weights start this cell."""
    d = cell_dir(ctx, cell)
    result_path = os.path.join(d, "result.json")
    if os.path.isfile(result_path):
        return _read(result_path)
    os.makedirs(d, exist_ok=True)
    _write(os.path.join(d, "cell.json"), describe(cell))
    config_path = os.path.join(d, "config.json")
    _write(config_path, to_dict(cell.cfg))
    t0 = time.time()
    trained = _train(cell, ctx, d, done)
    if trained is None:
        return None
    weights = eval_weights(trained)
    metrics, test_dev = _evaluate(cell, ctx, d, weights)
    speed = _speed(cell, ctx, d, weights)
    counted = _stage(os.path.join(d, "cost.json"), lambda: count_cost(cell.cfg))
    result = dict(describe(cell), metrics=metrics, speed=speed, cost=counted, train=trained,
                  test_dev=test_dev, weights=weights, produced_by=ctx.command, git=git_revision(),
                  commands=commands(cell, ctx, d, config_path, trained, weights),
                  wall_s=round(time.time() - t0, 1))
    return _write(result_path, result)


def eval_weights(trained):
    return trained["final_weights"]


def _init_weights(cell, ctx, d, done):
    """(weights path or None, layers left out of a transferred model)."""
    if cell.init == "imagenet":
        return imagenet_weights(cell.cfg, log=lambda *a: None), []
    if cell.init == "none":
        return None, []
    if cell.init_cell:
        src = done[cell.init]["weights"]
        out = os.path.join(d, f"init_from_{cell.init}.caffemodel")
        left_out = transfer_weights(src, cell.cfg, out)
        return out, left_out
    return cell.init, []


def _train(cell, ctx, d, done):
    path = os.path.join(d, "train", "train.json")
    if os.path.isfile(path):
        return _read(path)
    ann, images = ctx.data_root.train_set(cell.data)
    weights, left_out = _init_weights(cell, ctx, d, done)
    train_dir = os.path.join(d, "train")
    state = newest_solverstate(train_dir)
    start = snapshot_iter(state) if state else 0
    ctx.log(f"[reproduce] {cell.id}: training {cell.max_iter} iterations"
            + (f" from iteration {start}" if start else "") + f" -> {rel(train_dir)}")
    t0 = time.time()
    run = train(cell.cfg, train_dir, ann, images, weights=weights, resume=state is not None,
                seed=cell.seed, max_iter=cell.max_iter, workers=ctx.settings["workers"],
                gpu=ctx.gpu, quiet=ctx.quiet)
    if run["stopped_by"]:
        return None
    wall = time.time() - t0
    return _write(path, dict(final_weights=run["final_weights"], iterations=run["iter"],
                             init=weights or "fillers", init_left_out=left_out, ann=ann,
                             images=images, wall_s=round(wall, 1),
                             s_per_iter=wall / max(1, run["iter"] - start)))


def _evaluate(cell, ctx, d, weights):
    """Metrics on the val split (COCO: segm and bbox; Cityscapes: also the official evaluation)
    and, for COCO when the data root has test-dev, the server submission."""
    eval_dir = os.path.join(d, "eval")
    metrics_path = os.path.join(eval_dir, "metrics.json")
    test_dev_path = os.path.join(d, "test_dev", "submission.json")
    want_test_dev = cell.data == "coco" and ctx.data_root.has_test_dev()
    if os.path.isfile(metrics_path) and (os.path.isfile(test_dev_path) or not want_test_dev):
        return _read(metrics_path), _read(test_dev_path) if want_test_dev else None
    predictor = Predictor(cell.cfg, weights, gpu=ctx.gpu)
    if not os.path.isfile(metrics_path):
        if cell.data == "coco":
            ann, images = ctx.data_root.coco("val")
        else:
            ann, images, gt_dir = ctx.data_root.cityscapes("val")
        ctx.log(f"[reproduce] {cell.id}: scoring {rel(ann)}")
        evaluator = predict_dataset(predictor, ann, images, quiet=ctx.quiet)
        metrics = evaluator.evaluate()
        _write(os.path.join(eval_dir, "val_results.json"), evaluator.results(), indent=None)
        if cell.data == "cityscapes":
            from fassst.evaluation.cityscapes_eval import evaluate_coco_results
            metrics["cityscapes"] = evaluate_coco_results(
                evaluator.coco_gt, evaluator.results(), gt_dir, os.path.join(eval_dir, "cityscapes_eval"))
        report.save_markdown(metrics, os.path.join(eval_dir, "metrics.md"))
        report.save_json(metrics, metrics_path)  # NaN -> null, as every reader sees it
    test_dev = None
    if want_test_dev:
        ann, images = ctx.data_root.coco("test-dev")
        ctx.log(f"[reproduce] {cell.id}: test-dev predictions for the evaluation server")
        category_ids = CocoDataset(*ctx.data_root.coco("val")).category_ids
        test_dev = _write(test_dev_path, write_submission(
            predictor, ann, images, os.path.dirname(test_dev_path), category_ids, quiet=ctx.quiet))
    return _read(metrics_path), test_dev


def _speed(cell, ctx, d, weights):
    """Speed of the trained model's deploy net (net_bench): batch 1, every slot through the
    tail as the paper's cost counts it; the folded deploy net's figures when it was timed."""
    path = os.path.join(d, "bench", "bench.json")
    if not os.path.isfile(path):
        b = ctx.settings["bench"]
        ctx.log(f"[reproduce] {cell.id}: speed benchmark ({b['repeats']} rounds)")
        rec = net_bench.benchmark(cell.cfg, os.path.join(d, "bench"), weights=weights,
                                  repeats=b["repeats"], warmup=b["warmup"], gpu=ctx.gpu,
                                  all_slots=True, deploys=tuple(b["deploys"]),
                                  sgemm_size=b["sgemm_size"], log=lambda *a: None)
        _write(path, rec)
    rec = _read(path)
    run = next((r for r in rec["runs"] if r["deploy"] == "folded"), rec["runs"][0])
    return dict(forward_fps=run["forward_fps"], e2e_fps=run["e2e_fps"],
                forward_ms=run["forward_ms"], e2e_ms=run["e2e_ms"], deploy=run["label"],
                rois=run["rois"], hardware=rec["hardware"], repeats=rec["repeats"],
                warmup=rec["warmup"], load_average=rec["load_average_1min"], git=rec["git"],
                date=rec["date"])


def count_cost(cfg):
    """Multiply-adds and parameters of the deploy net with n ROIs through the tail, and the
    fp32 caffemodel size (scripts/flops.py's figures)."""
    c = cost.count(cfg)
    return dict(gmacs=c["gmacs"], params_m=c["params"] / 1e6, caffemodel_mb=c["caffemodel_mb"],
                rois=c["rois"])


def commands(cell, ctx, d, config_path, trained, weights):
    """What ran, as the stand-alone scripts that do the same steps one by one."""
    gpu = f" --gpu {ctx.gpu}" if ctx.gpu is not None else ""
    init = cell.init if cell.init in ("imagenet", "none") else rel(trained["init"])
    cfg = rel(config_path)
    out = dict(
        train=f"scripts/train.py --config {cfg} --ann {rel(trained['ann'])} --images "
              f"{rel(trained['images'])} --weights {init} "
              f"--iters {cell.max_iter} --seed {cell.seed} --workers {ctx.settings['workers']}{gpu} "
              f"--out {rel(os.path.join(d, 'train'))}",
        speed=f"scripts/bench.py --config {cfg} --weights {rel(weights)} --all-slots --iters "
              f"{ctx.settings['bench']['repeats']} --warmup {ctx.settings['bench']['warmup']} "
              + " ".join(f"--deploy {x}" for x in ctx.settings["bench"]["deploys"]) + gpu,
        cost=f"scripts/flops.py --config {cfg}")
    val = ctx.data_root.coco("val")[0] if cell.data == "coco" else ctx.data_root.cityscapes("val")[0]
    gt = (f" --cityscapes-gt {rel(ctx.data_root.cityscapes('val')[2])}"
          if cell.data == "cityscapes" else "")
    eval_dir = os.path.join(d, "eval")
    out["eval"] = (f"scripts/eval.py --ann {rel(val)} --results "
                   f"{rel(os.path.join(eval_dir, 'val_results.json'))}{gt} --out {rel(eval_dir)}")
    if cell.init_cell:
        out["init"] = (f"weights of cell {cell.init} (its final model) less the layers whose "
                       f"shapes differ: {', '.join(trained['init_left_out']) or 'none'}")
    return out
