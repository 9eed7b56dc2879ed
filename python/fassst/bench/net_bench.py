"""Whole-net benchmark (scripts/bench.py), shaped like the paper's Tables 2 and 4: the measuring.
The facts of the machine beside the figures are machine.py's; the markdown is net_report.py's.

For one config it prepares the deploy net (plain, and with BatchNorm folded by merge_bn; on request
also the plain net with Caffe's grouped Convolution for the depthwise convs, the baseline, and the
folded net with every Convolution on Caffe's im2col + GEMM, engine: CAFFE, the baseline of the
CPU's Winograd 3x3 path), then on one device, batch 1, after warm-up, median of K rounds, the
variants and measures taking turns:
  forward only    net.forward() on a letterboxed photo already in the input blob
  end to end      read the photo, letterbox, forward, decode, paste every mask at photo size,
                  RLE-encode the masks (COCO's results format)
  per layer       each layer alone (net._forward(i, i)), summed by part: backbone, depthwise,
                  IAM, pyramid, ROI extraction, RFF, tail
and beside them the cost counter's multiply-adds and parameters, the caffemodel size, and this
machine's numpy sgemm rate measured in the same run: the net's multiply-adds per second as a
fraction of it says how far the net is from the compute bound.

Without trained weights the net gets random ones (msra convs, BatchNorm statistics mean 0 and
variance 1, so activations stay finite), and every one of the n slots is sent through the tail
(score threshold 0): the cost the paper counts. With weights the config's threshold applies
unless all_slots is asked for; the ROI count is reported either way.
"""
import dataclasses
import datetime
import glob
import json
import os
import statistics
import time

from google.protobuf import text_format

import caffe
from caffe.proto import caffe_pb2

from fassst.bench import caffe_time, cost, machine, python_side
from fassst.build_paths import REPO_ROOT
from fassst.data import coco_rle, letterbox
from fassst.datasets.sample_data import ensure_sample_data
from fassst.images.read import read_rgb
from fassst.inference.predictor import Predictor
from fassst.net.depthwise import as_stock, is_depthwise
from fassst.net.fassst_net import build_net
from fassst.net.load import use_device
from fassst.net.merge_bn import merge_bn

PARTS = ("backbone", "depthwise", "FPN", "IAM", "pyramid", "ROI extraction", "RFF", "tail", "other")
DEPLOYS = ("plain", "folded")


def part_of(layer):
    """The FASSST part a deploy-net LayerParameter belongs to."""
    if is_depthwise(layer):
        return "depthwise"
    special = {"PyramidROIAlign": "ROI extraction", "ROIFeatureFusion": "RFF", "IAMDecode": "IAM"}
    if layer.type in special:
        return special[layer.type]
    if layer.name == "masks":
        return "tail"
    return {"mask tail": "tail"}.get(cost.group_of(layer.name), cost.group_of(layer.name))


def read_param(path):
    """The NetParameter of a prototxt file."""
    p = caffe_pb2.NetParameter()
    with open(path) as f:
        text_format.Merge(f.read(), p)
    return p


def _write(path, net_param):
    with open(path, "w") as f:
        f.write(str(net_param))
    return path


def random_weights(prototxt, path, seed=0):
    """Saves fillers' weights for the net, BatchNorm statistics set to mean 0, variance 1."""
    caffe.set_random_seed(seed)
    net = caffe.Net(prototxt, caffe.TEST)
    for layer in net.layers:
        if layer.type == "BatchNorm":
            layer.blobs[0].data[...] = 0
            layer.blobs[1].data[...] = 1
            layer.blobs[2].data[...] = 1
    net.save(path)
    return path


@dataclasses.dataclass(frozen=True)
class Variant:
    deploy: str      # plain | folded
    depthwise: str   # layer (DepthwiseConvolution) | stock (grouped Convolution)
    prototxt: str
    caffemodel: str
    conv: str = "winograd"  # winograd (3x3 stride 1 on the CPU) | im2col (engine: CAFFE)

    @property
    def label(self):
        return (self.deploy + (", stock depthwise" if self.depthwise == "stock" else "")
                + (", im2col 3x3" if self.conv == "im2col" else ""))


def as_im2col(net_param):
    """Copy of `net_param` whose Convolutions and Deconvolutions all ask for Caffe's own im2col +
    GEMM (engine: CAFFE), image by image: the CPU's Winograd path (caffe/util/winograd_conv.hpp)
    and the GPU's batched one (caffe/util/batched_conv.hpp) are off: their baseline."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(net_param)
    for layer in out.layer:
        if layer.type in ("Convolution", "Deconvolution"):
            layer.convolution_param.engine = caffe_pb2.ConvolutionParameter.CAFFE
    return out


def prepare(cfg, out_dir, weights=None, stock_depthwise=False, all_slots=False,
            deploys=DEPLOYS, stock_conv=False):
    """Writes out_dir/deploy_{plain,folded}.prototxt (+ weights) and returns the Variants and
    the config the deploy net was built from (score threshold 0 when all slots are forced).
    stock_depthwise adds the plain net with grouped Convolutions (the baseline) as a variant;
    it runs on the same weights (the blobs are the same). stock_conv adds the last deploy net
    (folded if asked for) with every Convolution on im2col + GEMM (as_im2col)."""
    os.makedirs(out_dir, exist_ok=True)
    if weights is None or all_slots:
        cfg = dataclasses.replace(cfg, score_threshold=0.0)
    plain = build_net(cfg, "deploy")
    plain_path = _write(os.path.join(out_dir, "deploy_plain.prototxt"), plain)
    if weights is None:
        weights = random_weights(plain_path, os.path.join(out_dir, "random_weights.caffemodel"))
    variants = []
    if stock_depthwise:
        stock_path = _write(os.path.join(out_dir, "deploy_plain_stock_depthwise.prototxt"),
                            as_stock(plain))
        variants.append(Variant("plain", "stock", stock_path, weights))
    if "plain" in deploys:
        variants.append(Variant("plain", "layer", plain_path, weights))
    if "folded" in deploys:
        folded = os.path.join(out_dir, "deploy_folded")
        merge_bn(plain_path, weights, folded + ".prototxt", folded + ".caffemodel")
        variants.append(Variant("folded", "layer", folded + ".prototxt", folded + ".caffemodel"))
    if stock_conv:
        last = variants[-1]
        path = _write(os.path.splitext(last.prototxt)[0] + "_im2col.prototxt",
                      as_im2col(read_param(last.prototxt)))
        variants.append(dataclasses.replace(last, prototxt=path, conv="im2col"))
    return variants, cfg


def sample_photos():
    """The sample data set's photos, sorted (real images of several sizes)."""
    _, image_dir = ensure_sample_data()
    return sorted(glob.glob(os.path.join(image_dir, "*")))


def _stats(samples):
    return dict(median=statistics.median(samples), min=min(samples))


def layer_times(net):
    """ms of each layer run alone, in net order (the input blob already filled): one sweep."""
    out = []
    for i in range(len(net.layers)):
        t0 = time.perf_counter()
        net._forward(i, i)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


class _Runner:
    """One variant's net, its predictor and its cost figures."""

    def __init__(self, variant, cfg, photo, gpu):
        self.variant = variant
        self.net_param = read_param(variant.prototxt)
        self.predictor = Predictor(cfg, variant.caffemodel, gpu=gpu, net_param=self.net_param)
        self.net = self.predictor.net
        image = read_rgb(photo)
        lb = letterbox.fit(image.shape[0], image.shape[1], cfg.input_size)
        self.input = letterbox.image_to_blob(image, lb)
        self.net.blobs["data"].data[0] = self.input
        self.net.forward()
        self.rois = int(self.net.blobs["rois"].data.shape[0])
        self.forward_ms, self.e2e_ms, self.python_ms = [], [], []
        self.layer_ms = [[] for _ in self.net.layers]

    def time_forward(self):
        self.net.blobs["data"].data[0] = self.input  # the end-to-end runs change it
        t0 = time.perf_counter()
        self.net.forward()
        return (time.perf_counter() - t0) * 1e3

    def time_layers(self):
        self.net.blobs["data"].data[0] = self.input
        return layer_times(self.net)

    def time_end_to_end(self, path):
        """(total, Python side) ms of read + letterbox + forward + decode, paste and RLE; the
        Python side is the total less the forward, timed within the same call."""
        t0 = time.perf_counter()
        blob, lb = self.predictor.preprocess(read_rgb(path))
        t1 = time.perf_counter()
        out = self.predictor.forward(blob)
        t2 = time.perf_counter()
        inst = self.predictor.postprocess(out, lb)
        coco_rle.encode(inst["masks"], inst.get("mask_windows"))
        t3 = time.perf_counter()
        return (t3 - t0) * 1e3, (t3 - t2 + t1 - t0) * 1e3

    def record(self):
        rows, _ = cost.layer_costs(cost.with_rois(self.net_param, max(self.rois, 1)))
        macs = {r["name"]: r["macs"] for r in rows}
        per_layer = [statistics.median(s) for s in self.layer_ms]
        parts = {p: dict(ms=0.0, gmacs=0.0) for p in PARTS}
        layers = []
        by_name = {layer.name: layer for layer in self.net_param.layer}
        part = "other"
        for name, layer, ms in zip(self.net._layer_names, self.net.layers, per_layer):
            # Caffe inserts Split layers (not in the prototxt) right after a blob's producer:
            # they count with it.
            if name in by_name:
                part = part_of(by_name[name])
            parts[part]["ms"] += ms
            parts[part]["gmacs"] += macs.get(name, 0) / 1e9
            layers.append(dict(name=name, type=layer.type, part=part, ms=ms))
        parts = {p: v for p, v in parts.items() if v["ms"] > 0 or v["gmacs"] > 0}
        for v in parts.values():
            v["gmacs_per_s"] = v["gmacs"] / (v["ms"] / 1e3) if v["ms"] > 0 else None
        gmacs = sum(macs.values()) / 1e9
        fwd, e2e = _stats(self.forward_ms), _stats(self.e2e_ms)
        v = self.variant
        return dict(deploy=v.deploy, depthwise=v.depthwise, conv=v.conv, label=v.label,
                    prototxt=os.path.relpath(v.prototxt, REPO_ROOT), rois=self.rois,
                    forward_ms=fwd["median"], forward_min_ms=fwd["min"],
                    forward_fps=1e3 / fwd["median"], e2e_ms=e2e["median"],
                    e2e_min_ms=e2e["min"], e2e_fps=1e3 / e2e["median"],
                    python_side_ms=statistics.median(self.python_ms),
                    gmacs=gmacs, params=sum(r["params"] for r in rows),
                    caffemodel_mb=os.path.getsize(v.caffemodel) / 1e6,
                    gmacs_per_s=gmacs / (fwd["median"] / 1e3), layer_sum_ms=sum(per_layer),
                    parts=parts, top_layers=sorted(layers, key=lambda r: -r["ms"])[:12])


def run_variants(variants, cfg, photos, warmup, repeats, gpu=None, log=print):
    """Times the variants; every round runs, for each variant in turn, a forward, an end-to-end
    pass on the next photo and a sweep of single layers, so that load from other processes falls
    on all variants and all three measures alike. Returns one record per variant."""
    runners = [_Runner(v, cfg, photos[0], gpu) for v in variants]
    log(f"{warmup} + {repeats} rounds: forward, end to end ({len(photos)} photos in turn), "
        f"each layer alone")
    for i in range(warmup + repeats):
        path = photos[i % len(photos)]
        for r in runners:
            fwd = r.time_forward()
            total, python = r.time_end_to_end(path)
            layers = r.time_layers()
            if i < warmup:
                continue
            r.forward_ms.append(fwd)
            r.e2e_ms.append(total)
            r.python_ms.append(python)
            for samples, t in zip(r.layer_ms, layers):
                samples.append(t)
    return [r.record() for r in runners]


def benchmark(cfg, out_dir, weights=None, repeats=20, warmup=3, gpu=None,
              stock_depthwise=False, all_slots=False, deploys=DEPLOYS, log=print, sgemm_size=2048,
              stock_conv=False):
    """Prepares, measures and returns the full record (what results/bench/<config>.json holds).
    sgemm_size: side of the numpy matmul that measures this machine's rate (smaller: quicker,
    noisier)."""
    use_device(gpu)
    variants, run_cfg = prepare(cfg, out_dir, weights, stock_depthwise, all_slots, deploys,
                                stock_conv)
    photos = sample_photos()
    log(f"measuring sgemm (numpy float32, {sgemm_size}^3) ...")
    rate = machine.sgemm_rate(sgemm_size)
    load = machine.load_average()
    runs = run_variants(variants, run_cfg, photos, warmup, repeats, gpu, log)
    for r in runs:
        r["fraction_of_sgemm"] = r["gmacs_per_s"] * 1e9 / rate if gpu is None else None
    rate_after = machine.sgemm_rate(sgemm_size)
    return dict(config=cfg.name, input_size=cfg.input_size, num_slots=cfg.num_slots,
                num_classes=cfg.num_classes, weights=weights or "random (seed 0)",
                all_slots=weights is None or all_slots, hardware=machine.hardware(gpu),
                git=machine.git_hash(),
                paste_rle=python_side.paste_rle_path(),
                date=datetime.datetime.now().isoformat(timespec="seconds"),
                load_average_1min=[load, machine.load_average()], repeats=repeats, warmup=warmup,
                sgemm_gmacs_per_s=rate / 1e9, sgemm_after_gmacs_per_s=rate_after / 1e9,
                runs=runs, paper=cost.paper_rows(cfg))


def profile_python(cfg, out_dir, weights=None, all_slots=False, rounds=5, warmup=1, gpu=None,
                   log=print):
    """The Python side stage by stage (fassst.bench.python_side) around the plain deploy net on
    the sample photos; returns its record with the config, ROI setting, git hash and load."""
    use_device(gpu)
    (variant,), run_cfg = prepare(cfg, out_dir, weights, False, all_slots, ("plain",))
    predictor = Predictor(run_cfg, variant.caffemodel, gpu=gpu,
                          net_param=read_param(variant.prototxt))
    load = machine.load_average()
    rec = python_side.profile(predictor, sample_photos(), rounds, warmup, log)
    return dict(rec, config=cfg.name, input_size=cfg.input_size, weights=weights or "random (seed 0)",
                all_slots=weights is None or all_slots, git=machine.git_hash(),
                date=datetime.datetime.now().isoformat(timespec="seconds"),
                load_average_1min=[load, machine.load_average()])


# The same nets for Caffe's own `caffe time` (machines where pycaffe cannot load); their logs are
# read back by net_report.from_logs.

def export(cfg, out_dir, stock_depthwise=False, deploys=DEPLOYS, stock_conv=False, env=""):
    """Writes out_dir/<variant>.prototxt for `caffe time -phase TEST` and out_dir/nets.json
    (env: the environment the nets are to be timed with, e.g. FASSST_GPU_TF32=1, recorded there).

    `caffe time` loads no weights and cannot be fed a photo, so the input is Gaussian noise
    (DummyData) and IAMDecode is replaced by n random ROIs (caffe_time.for_caffe_time): every
    slot goes through the tail, as with random weights here. Returns the commands to run."""
    variants, _ = prepare(cfg, out_dir, None, stock_depthwise, True, deploys, stock_conv)
    index, commands = {}, []
    for v in variants:
        name = v.label.replace(", ", "_").replace(" ", "_")
        net = cost.with_rois(read_param(v.prototxt), cfg.num_slots)
        net = caffe_time.for_caffe_time(net, size=cfg.input_size, force_backward=False)
        _write(os.path.join(out_dir, name + ".prototxt"), net)
        index[name] = dict(label=v.label, deploy=v.deploy, depthwise=v.depthwise, conv=v.conv)
        commands.append(f"{env + ' ' if env else ''}caffe time -model {out_dir}/{name}.prototxt "
                        f"-phase TEST -iterations 50 [-gpu 0] 2> {out_dir}/{name}.log")
    with open(os.path.join(out_dir, "nets.json"), "w") as f:
        json.dump(dict(config=cfg.name, input_size=cfg.input_size, num_slots=cfg.num_slots,
                       env=env, nets=index), f, indent=1)
    return commands
