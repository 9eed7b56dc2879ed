#!/usr/bin/env python3
"""The main job: fine-tune the CPU config on the sample data and evaluate it (see demo.sh)."""
import argparse
import os

os.environ.setdefault("GLOG_minloglevel", "0")  # Caffe's INFO log goes to the run's train.log
import _init_paths  # noqa: F401,E402

from fassst import cli  # noqa: E402
from fassst.demo import run_demo  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="results/demo")
    ap.add_argument("--config", default="fassst_cpu_sample")
    ap.add_argument("--iters", type=cli.positive_int,
                    help="training iterations (default: the config's schedule)")
    ap.add_argument("--seed", type=cli.seed, default=0)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted demo run")
    args = ap.parse_args()
    run_demo(args.out, args.config, iters=args.iters, seed=args.seed, resume=args.resume)


if __name__ == "__main__":
    cli.run(main)
