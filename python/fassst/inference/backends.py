"""One predictor interface, two backends: `caffe` (a .caffemodel in the Caffe deploy net) and
`onnxruntime` (a .onnx written by scripts/export_onnx.py). Imports are per backend, so the ONNX
backend needs no pycaffe."""

from fassst.errors import InputError

BACKENDS = ("caffe", "onnxruntime")


def make_predictor(backend, cfg, weights, gpu=None, score_threshold=None):
    if backend == "caffe":
        from fassst.inference.predictor import Predictor
        return Predictor(cfg, weights, gpu=gpu, score_threshold=score_threshold)
    if backend == "onnxruntime":
        if gpu is not None:
            raise InputError("--gpu is for the caffe backend; the onnxruntime package pinned here "
                             "is the CPU build")
        from fassst.inference.onnx_predictor import OnnxPredictor
        return OnnxPredictor(cfg, weights, score_threshold=score_threshold)
    raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
