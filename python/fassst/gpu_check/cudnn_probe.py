"""UNVERIFIED: written without a GPU; nothing here has run on one. Device side only: imports
torch (lazily), never caffe, so it runs on a GPU machine whose Python cannot load our pycaffe.

The cuDNN question for this Caffe: its GPU build has cuDNN off (the fork's cuDNN layers call APIs
cuDNN 8 removed), so Convolution runs as im2col + cuBLAS GEMM. Porting the cuDNN layers is worth
it only if cuDNN is much faster on the shapes that matter: the mask tail's 3x3 convolutions (n
ROIs a batch) and MobileNetV2's depthwise convolutions (batch 1). This times the same shapes in
torch three ways: cuDNN in FP32 (TF32 off, as Caffe's SGEMM), cuDNN with TF32, and torch's own
CUDA kernels with cuDNN disabled (im2col + GEMM, or its depthwise kernel). Forward and backward
(input and weight gradients, as `caffe time` with force_backward) each timed with CUDA events,
median after warm-up, algorithms chosen by cudnn.benchmark.
"""
import json
import platform
import statistics

from fassst.errors import read_json

MODES = (("cudnn_fp32", True, False), ("cudnn_tf32", True, True), ("native", False, False))


class NoDevice(Exception):
    """torch or a CUDA device is missing: nothing can be timed."""


def _torch():
    try:
        import torch
    except ImportError:
        raise NoDevice(f"torch is not installed for python {platform.python_version()}: "
                       f"nothing timed (device-only probe)") from None
    if not torch.cuda.is_available():
        raise NoDevice(f"torch {torch.__version__} sees no CUDA device: nothing timed "
                       f"(device-only probe)")
    return torch


def _median_ms(torch, fn, warmup, repeats):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def time_shape(torch, shape, warmup=5, repeats=30):
    """{mode: [forward ms, backward ms]} for one convolution shape (a cudnn_shapes.json entry)."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(shape["n"], shape["c_in"], shape["h"], shape["w"], device="cuda",
                    generator=gen, requires_grad=True)
    w = torch.randn(shape["c_out"], shape["c_in"] // shape["groups"], shape["kernel"],
                    shape["kernel"], device="cuda", generator=gen, requires_grad=True)
    kw = dict(stride=shape["stride"], padding=shape["pad"], groups=shape["groups"])
    conv = torch.nn.functional.conv2d
    out = {}
    cudnn = torch.backends.cudnn
    # the settings as attributes (the long-standing API) rather than cudnn.flags(), whose keyword
    # arguments have changed between torch releases
    cudnn.benchmark, cudnn.deterministic = True, False
    torch.backends.cuda.matmul.allow_tf32 = False  # torch's own GEMMs in FP32, as Caffe's SGEMM
    for mode, enabled, tf32 in MODES:
        cudnn.enabled, cudnn.allow_tf32 = enabled, tf32
        with torch.no_grad():
            fwd = _median_ms(torch, lambda: conv(x, w, **kw), warmup, repeats)
        y = conv(x, w, **kw)
        g = torch.randn_like(y)
        bwd = _median_ms(torch, lambda: torch.autograd.grad(y, (x, w), g, retain_graph=True),
                         warmup, repeats)
        out[mode] = [round(fwd, 4), round(bwd, 4)]
    cudnn.enabled = True
    return out


def run(shapes, warmup=5, repeats=30, log=print):
    """The probe's record: device, versions and a row per shape."""
    torch = _torch()
    rec = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__,
               cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
               warmup=warmup, repeats=repeats, modes=[m for m, _, _ in MODES], rows=[])
    log(f"{rec['device']}, torch {rec['torch']}, CUDA {rec['cuda']}, cuDNN {rec['cudnn']}; ms, "
        f"median of {repeats} after {warmup} warm-up")
    log("| shape | " + " | ".join(f"{m} fwd | {m} bwd" for m in rec["modes"]) + " |")
    for shape in shapes:
        try:
            times = time_shape(torch, shape, warmup, repeats)
        except RuntimeError as e:  # one shape failing (memory, a missing kernel) keeps the others
            log(f"| {shape['group']} {shape['case']} | failed: {str(e).splitlines()[0]} |")
            rec.setdefault("failed", []).append(dict(group=shape["group"], case=shape["case"],
                                                     error=str(e).splitlines()[0]))
            continue
        rec["rows"].append(dict(group=shape["group"], case=shape["case"], times=times))
        log(f"| {shape['group']} {shape['case']} | "
            + " | ".join(f"{f:.3f} | {b:.3f}" for f, b in times.values()) + " |")
    return rec


def main(shapes_path, json_path=None, warmup=5, repeats=30):
    """Times the shapes of a bundle's cudnn_shapes.json; writes the record to json_path."""
    rec = run(read_json(shapes_path, "cudnn_shapes.json"), warmup, repeats)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rec, f, indent=1)
        print(f"wrote {json_path}")
    return rec
