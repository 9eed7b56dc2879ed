"""The ONNX Runtime backend: the whole segmenter exported by scripts/export_onnx.py, run by
onnxruntime on the CPU, behind LetterboxPredictor's interface (the same as Caffe's Predictor).

The exported graph decodes, selects and runs the mask tail itself; its score threshold is a
constant of the graph (metadata `score_threshold`). A higher threshold asked for here filters
the graph's output, which equals the Caffe net at that threshold (the graph keeps every slot
above its own threshold, best first, at most n); a lower one needs a new export.
"""
import os

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from fassst.errors import InputError, MissingFileError
from fassst.inference.letterbox_predictor import LetterboxPredictor


def model_metadata(session):
    return dict(session.get_modelmeta().custom_metadata_map)


class OnnxPredictor(LetterboxPredictor):
    def __init__(self, cfg, onnx_path, score_threshold=None, mask_threshold=0.5, threads=0):
        if not os.path.isfile(onnx_path):
            raise MissingFileError(f"{onnx_path}: no such ONNX model (write one with "
                                   f"scripts/export_onnx.py)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, one per core
        try:
            self.session = ort.InferenceSession(onnx_path, options,
                                                providers=["CPUExecutionProvider"])
        except (ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.Fail) as e:
            raise InputError(f"{onnx_path}: ONNX Runtime cannot load it ({e})") from None
        meta = model_metadata(self.session)
        shape = self.session.get_inputs()[0].shape
        if shape[2:] != [cfg.input_size, cfg.input_size]:
            raise InputError(f"{onnx_path}: input {shape}, but config {cfg.name} has input_size "
                             f"{cfg.input_size}")
        self.graph_threshold = float(meta.get("score_threshold", "nan"))
        if score_threshold is not None and not score_threshold >= self.graph_threshold:
            raise InputError(f"{onnx_path} keeps scores > {self.graph_threshold}; a lower "
                             f"threshold ({score_threshold}) needs scripts/export_onnx.py "
                             f"--score-threshold {score_threshold}")
        super().__init__(cfg, mask_threshold)
        self.score_threshold = score_threshold
        self.input_name = self.session.get_inputs()[0].name

    def run(self, blob):
        """Raw graph outputs for one (3, S, S) input: dict of boxes, scores, classes, masks, slots."""
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, {self.input_name: blob[None]})))

    def forward(self, blob):
        out = self.run(blob)
        keep = slice(None)
        if self.score_threshold is not None:
            keep = out["scores"] > np.float32(self.score_threshold)
        return dict(boxes=out["boxes"][keep], scores=out["scores"][keep],
                    labels=out["classes"][keep], masks=out["masks"][keep][:, 0])
