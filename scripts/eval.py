#!/usr/bin/env python3
"""Evaluate a COCO results json (test-dev format) against a COCO annotation json.

    scripts/eval.py --ann val.json --results results.json --out out/ [--check coco]
    scripts/eval.py --ann cityscapes_val.json --results results.json --out out/ \
        --cityscapes-gt CITYSCAPES/gtFine/val --check cityscapes

Prints pycocotools' summary and the markdown tables; writes out/metrics.json, out/metrics.md
and out/run.json (arguments, git commit). --cityscapes-gt adds the official Cityscapes
evaluation (the json must come from scripts/cityscapes_to_coco.py). --check TASK compares with
the paper's numbers (python/fassst/evaluation/targets.json, or --targets); exit 1 on a miss.
"""
import argparse
import json
import os

import _init_paths  # noqa: F401  (this checkout's python/ first on sys.path)
from fassst import cli
from fassst.engine.run_dir import git_revision
from fassst.evaluation import report, reproduction
from fassst.evaluation.coco_evaluator import IOU_TYPES, evaluate_results, load_coco_gt, read_results


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--ann", required=True, help="COCO annotation json (ground truth)")
    p.add_argument("--results", required=True, help="COCO results json (a list of detections)")
    p.add_argument("--out", required=True, help="folder for metrics.json and metrics.md")
    p.add_argument("--iou-types", nargs="+", default=list(IOU_TYPES), choices=IOU_TYPES)
    p.add_argument("--cityscapes-gt", metavar="DIR",
                   help="gtFine/<split> with *_gtFine_instanceIds.png: run the official "
                        "Cityscapes evaluation too")
    p.add_argument("--check", metavar="TASK",
                   help="compare with the paper's targets for TASK (e.g. coco, cityscapes)")
    p.add_argument("--targets", default=reproduction.DEFAULT_TARGETS,
                   help="targets json (rows [task, metric, value, tolerance, source])")
    p.add_argument("--method", default="FASSST", help="row name in the markdown tables")
    return p.parse_args()


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "run.json"), "w") as f:  # provenance of the numbers
        json.dump({"args": vars(args), "git": git_revision()}, f, indent=2)
    coco_gt = load_coco_gt(args.ann)
    results = read_results(args.results, coco_gt, args.iou_types)
    metrics = evaluate_results(coco_gt, results, args.iou_types)
    if args.cityscapes_gt:
        from fassst.evaluation.cityscapes_eval import evaluate_coco_results
        metrics["cityscapes"] = evaluate_coco_results(
            coco_gt, results, args.cityscapes_gt, os.path.join(args.out, "cityscapes_eval"))

    print(report.coco_summary_text(metrics))
    print(report.markdown(metrics, args.method))
    report.save_json(metrics, os.path.join(args.out, "metrics.json"))
    report.save_markdown(metrics, os.path.join(args.out, "metrics.md"), args.method)
    print(f"wrote {os.path.join(args.out, 'metrics.json')} and metrics.md")

    if args.check:
        # an unknown task raises (one `error:` line, exit 1): it must fail, not pass quietly
        outcomes = reproduction.check(metrics, args.check, reproduction.load_targets(args.targets))
        print(reproduction.format_outcomes(outcomes))
        if not all(o.ok for o in outcomes):
            return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
