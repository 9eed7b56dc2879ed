"""The whole-net benchmark's bookkeeping (no timing is asserted: a benchmark is not a test):
which part each layer counts for, the nets exported for `caffe time` and the table read back
from the tool's log, and the Python side profile's records."""
import os
import subprocess

import numpy as np

import caffe
from fassst.bench import cost, net_bench, net_report, python_side
from fassst.build_paths import caffe_tool
from fassst.config import load_config
from fassst.inference.letterbox_predictor import LetterboxPredictor
from fassst.net.depthwise import as_stock
from fassst.net.fassst_net import build_net


def test_every_deploy_layer_has_its_part():
    net = build_net(load_config("fassst_cpu_sample"), "deploy")
    parts = {layer.name: net_bench.part_of(layer) for layer in net.layer}
    expect = {"features.0.0": "backbone", "features.2.conv.1.0": "depthwise",
              "features.2.conv.1.1/relu": "backbone", "iam/conv1": "IAM", "rois": "IAM",
              "r1": "ROI extraction", "rff": "RFF", "tail/conv1": "tail", "tail/deconv": "tail",
              "mask_logits": "tail", "masks": "tail"}
    assert {k: parts[k] for k in expect} == expect
    assert {p for p in parts.values()} <= set(net_bench.PARTS)
    assert sum(p == "depthwise" for p in parts.values()) == 17
    assert any(p == "pyramid" for p in parts.values())
    stock = {layer.name: net_bench.part_of(layer) for layer in as_stock(net).layer}
    assert stock == parts  # grouped Convolutions count as depthwise too


def test_export_and_tables_from_caffe_time_logs(tmp_path):
    cfg = load_config("fassst_cpu_sample")
    caffe.set_mode_cpu()
    commands = net_bench.export(cfg, str(tmp_path), stock_depthwise=True)
    assert len(commands) == 3
    names = ("plain_stock_depthwise", "plain", "folded")
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    for name in names:
        res = subprocess.run([caffe_tool(), "time", "-model", str(tmp_path / f"{name}.prototxt"),
                              "-phase", "TEST", "-iterations", "1"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        (tmp_path / f"{name}.log").write_text(res.stderr)
    table = net_report.from_logs(str(tmp_path), "this CPU")
    rows = [line for line in table.splitlines() if line.startswith("| plain") or
            line.startswith("| folded")]
    assert [r.split(" | ")[0] for r in rows] == ["| plain, stock depthwise", "| plain", "| folded"]
    for r in rows:
        cells = [float(c) for c in r.strip(" |").split(" | ")[1:]]
        assert cells[0] > 0 and all(c >= 0 for c in cells)
        assert sum(cells[2:]) <= cells[0] * 1.5  # parts are pieces of the forward pass


def test_paper_rows_by_config():
    """Configs carry no data-set field: the paper's Table 2 / 4 rows go by the config's name."""
    coco = cost.paper_rows(load_config("fassst_416_coco"))
    city = cost.paper_rows(load_config("fassst_768_cityscapes"))
    assert coco["table"].startswith("Table 2") and coco["rows"][0]["fps"] == 59.2
    assert city["table"].startswith("Table 4") and city["rows"][0]["fps"] == 47.5
    assert cost.paper_rows(load_config("fassst_cpu_sample")) is None


def test_python_side_profile_has_every_stage_and_the_photos():
    """--profile-python's bookkeeping with a stand-in forward (two ROIs per photo): every stage
    and the total, per clock, and what each photo held."""
    class TwoRois(LetterboxPredictor):
        def forward(self, blob):
            return dict(boxes=np.float32([[10, 20, 90, 120], [0, 0, 255, 255]]),
                        scores=np.float32([0.9, 0.5]), labels=np.float32([0, 1]),
                        masks=np.full((2, 28, 28), 0.7, np.float32))

    photos = net_bench.sample_photos()[:3]
    rec = python_side.profile(TwoRois(load_config("fassst_cpu_sample")), photos, rounds=2,
                              warmup=0, log=lambda _: None)
    assert list(rec["stages"]) == list(python_side.STAGES) + ["total"]
    for r in rec["stages"].values():
        assert set(r) == {"cpu_ms", "wall_ms", "cpu_slowest_photo_ms", "wall_slowest_photo_ms"}
        assert all(v >= 0 for v in r.values())
    assert rec["stages"]["total"]["wall_ms"] >= rec["stages"]["paste masks"]["wall_ms"]
    assert [p["rois"] for p in rec["photos"]] == [2, 2, 2]
    assert [p["photo"] for p in rec["photos"]] == [os.path.basename(p) for p in photos]
    assert "| paste masks |" in python_side.markdown(rec, "t")


def test_im2col_variant_is_the_same_net_on_caffes_convolution(tmp_path):
    """--stock-conv's variant: every Convolution and Deconvolution asks for engine CAFFE (im2col
    + GEMM image by image: no Winograd on the CPU, no batched GEMM on the GPU), on the same
    weights; its outputs match the Winograd net's to the rounding of the transforms (an
    independent path: Caffe's own convolution)."""
    cfg = load_config("fassst_cpu_sample")
    caffe.set_mode_cpu()
    variants, _ = net_bench.prepare(cfg, str(tmp_path), deploys=("folded",), stock_conv=True)
    assert [v.label for v in variants] == ["folded", "folded, im2col 3x3"]
    winograd, im2col = variants
    assert im2col.caffemodel == winograd.caffemodel
    layers = net_bench.read_param(im2col.prototxt).layer
    for kind in ("Convolution", "Deconvolution"):
        convs = [layer for layer in layers if layer.type == kind]
        assert convs and all(layer.convolution_param.engine == 1 for layer in convs), kind  # CAFFE
    nets = [caffe.Net(v.prototxt, v.caffemodel, caffe.TEST) for v in variants]
    x = np.random.RandomState(0).standard_normal(nets[0].blobs["data"].data.shape)
    for net in nets:
        net.blobs["data"].data[...] = x
        net.forward()
    for name in ("p1/conv", "rois", "tail/conv2", "masks"):
        a, b = (net.blobs[name].data for net in nets)
        assert a.shape == b.shape and a.size > 0, name
        scale = np.abs(b).max()
        assert np.abs(a - b).max() <= 1e-4 * scale, name
    assert not np.array_equal(nets[0].blobs["tail/conv2"].data, nets[1].blobs["tail/conv2"].data)
