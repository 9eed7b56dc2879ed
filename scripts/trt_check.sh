#!/usr/bin/env bash
# UNVERIFIED. Written without a GPU: nothing in this script has been run. It is the
# prepared TensorRT check, to run on a machine with a GPU.
#
#   scripts/trt_check.sh fassst.onnx [iterations]
#
# Builds TensorRT engines (FP32, then FP16) from a model written by scripts/export_onnx.py, runs
# them and ONNX Runtime on the same random input, compares the outputs (polygraphy) and prints
# polygraphy's per-runner inference times. Needs, on the GPU machine: tensorrt-cu13==11.4.0.106
# and polygraphy==0.53.6 (pip; the device machine reaches no registry, so they must already be
# there), onnxruntime. Open questions it should answer: does TensorRT's ONNX parser take the
# data-dependent R (Slice to the kept count, TopK with K = n), and RoiAlign (its ROIAlign plugin)?
# Random inputs give scores near each other; compare outputs by slot (fassst/export/compare.py)
# if polygraphy's element-wise comparison reports order differences between near-equal scores.
set -euo pipefail
model="${1:?usage: scripts/trt_check.sh MODEL.onnx [iterations]}"
iters="${2:-100}"
python3 -c "import tensorrt, polygraphy" 2>/dev/null \
  || { echo "tensorrt and polygraphy are not installed here" >&2; exit 1; }
for precision in fp32 fp16; do
  flags=()
  [[ $precision == fp16 ]] && flags+=(--fp16)
  echo "== TensorRT $precision vs ONNX Runtime =="
  polygraphy run "$model" --trt --onnxrt "${flags[@]}" --iterations "$iters" \
    --atol 1e-3 --rtol 1e-3 --save-engine "${model%.onnx}_${precision}.engine"
done
