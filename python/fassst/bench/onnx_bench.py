"""Caffe CPU vs ONNX Runtime CPU on the same FASSST deploy net, same weights, same input.

Batch 1, every one of the n slots through the mask tail in both (score threshold 0: a sigmoid
score is > 0, so IAMDecode keeps all n; checked, not assumed), which is the paper's cost (its
FLOPs count the tail n times). The two runtimes alternate iteration by iteration, so load from
other processes on the machine falls on both alike; after warm-up, the median of K per runtime.
"""
import dataclasses
import os
import statistics
import tempfile
import time

import numpy as np
import onnxruntime as ort

import caffe
from fassst.bench import machine
from fassst.export.compare import caffe_detections, compare_detections, onnx_detections
from fassst.export.onnx_export import deploy_net_param, export_deploy, save
from fassst.net.load import caffe_net, use_device


def all_slots_config(cfg):
    """The config with score threshold 0, so every slot reaches the tail."""
    return dataclasses.replace(cfg, score_threshold=0.0)


def random_weights(cfg, path, seed=0):
    """Caffe's fillers, BatchNorm statistics of a unit-variance input (Caffe's initial zeros would
    scale activations by 1 / sqrt(eps)); saved to `path`. Timing does not depend on the values."""
    net = caffe_net(deploy_net_param(cfg), caffe.TEST)
    rng = np.random.default_rng(seed)
    for name, layer in zip(net._layer_names, net.layers):
        if layer.type == "BatchNorm":
            c = layer.blobs[0].data.shape[0]
            layer.blobs[0].data[...] = rng.normal(0, 0.1, c)
            layer.blobs[1].data[...] = 1.0
            layer.blobs[2].data[...] = 1.0
    net.save(path)
    return path


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _stats(times_ms):
    q = statistics.quantiles(times_ms, n=4) if len(times_ms) > 1 else times_ms * 3
    return dict(median_ms=statistics.median(times_ms), q1_ms=q[0], q3_ms=q[-1], runs=len(times_ms))


def run(cfg, weights=None, iters=10, warmup=2, seed=0):
    """Times both runtimes; returns a dict (the JSON the script writes)."""
    cfg = all_slots_config(cfg)
    use_device(None)  # ONNX Runtime's CPU provider against Caffe on the CPU
    with tempfile.TemporaryDirectory() as tmp:
        if weights is None:
            weights = random_weights(cfg, os.path.join(tmp, "random.caffemodel"), seed)
            source = "random (fillers, unit-variance BN statistics)"
        else:
            source = weights
        net = caffe_net(deploy_net_param(cfg), caffe.TEST, weights=weights)
        sessions = {}
        for fold in (False, True):
            path = save(export_deploy(cfg, weights, fold_bn=fold), os.path.join(tmp, f"m{int(fold)}.onnx"))
            sessions["onnxruntime" + (" (BN folded)" if fold else "")] = ort.InferenceSession(
                path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(seed).normal(size=(1, 3, cfg.input_size, cfg.input_size)).astype(np.float32)

    def caffe_forward():
        net.blobs["data"].data[...] = x
        net.forward()

    runners = {"caffe": caffe_forward}
    for name, s in sessions.items():
        runners[name] = lambda s=s: s.run(None, {"image": x})
    times = {name: [] for name in runners}
    for i in range(warmup + iters):
        for name, fn in runners.items():
            t = _timed(fn) * 1e3
            if i >= warmup:
                times[name].append(t)

    caffe_forward()
    ref, out = caffe_detections(net), onnx_detections(sessions["onnxruntime"], x)
    rois = {"caffe": len(ref["slots"]), "onnxruntime": len(out["slots"])}
    if set(rois.values()) != {cfg.num_slots}:
        raise RuntimeError(f"expected all {cfg.num_slots} slots through the tail, got {rois}")
    return dict(
        config=cfg.name, input_size=cfg.input_size, num_slots=cfg.num_slots, rois=cfg.num_slots,
        weights=source, iters=iters, warmup=warmup,
        machine=dict(cpu=machine.cpu_name(), cores=os.cpu_count(),
                     load_avg_1min=machine.load_average(),
                     sgemm_gmacs=round(machine.sgemm_rate(1024) / 1e9, 1)),
        versions=dict(onnxruntime=ort.__version__, numpy=np.__version__),
        threads=dict(onnxruntime_intra_op="default (one per physical core)",
                     openblas=os.environ.get("OPENBLAS_NUM_THREADS", "default (all cores)")),
        times={name: _stats(t) for name, t in times.items()},
        agreement=compare_detections(ref, out, cfg.score_threshold))


def table(result):
    base = result["times"]["caffe"]["median_ms"]
    lines = [f"| {result['config']} ({result['rois']} ROIs, batch 1) | median ms | q1-q3 ms | vs Caffe |",
             "|---|---:|---:|---:|"]
    for name, t in result["times"].items():
        lines.append(f"| {name} | {t['median_ms']:.1f} | {t['q1_ms']:.1f}-{t['q3_ms']:.1f} | "
                     f"{base / t['median_ms']:.2f}x |")
    return "\n".join(lines)
