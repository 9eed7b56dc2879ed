"""The cost counter against hand counts, and the default configs against the paper's cost."""
import pytest

import caffe
from caffe import layers as L

from fassst.bench import cost
from fassst.config import load_config
from fassst.net.fassst_net import build_net


def two_layer_net():
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[2, 3, 10, 10]))
    ns.conv = L.Convolution(ns.data, num_output=8, kernel_size=3, pad=1, stride=1, group=1)
    ns.up = L.Deconvolution(ns.conv, convolution_param=dict(num_output=4, kernel_size=2, stride=2))
    ns.fc = L.InnerProduct(ns.up, num_output=5)
    return ns.to_proto()


def test_counts_match_hand_counts():
    rows, net = cost.layer_costs(two_layer_net())
    by = {r["name"]: r for r in rows}
    # conv: 2 x 8 x 10 x 10 outputs, each 3 x 3 x 3 MACs; params 8 x 3 x 9 + 8 bias
    assert by["conv"]["macs"] == 2 * 8 * 10 * 10 * 3 * 9
    assert by["conv"]["params"] == 8 * 3 * 9 + 8
    # deconv 2x2/s2: each of the 2 x 8 x 10 x 10 inputs spreads to 4 x 2 x 2 outputs
    assert by["up"]["macs"] == 2 * 8 * 10 * 10 * 4 * 2 * 2
    assert by["up"]["params"] == 8 * 4 * 2 * 2 + 4
    assert by["up"]["shape"] == (2, 4, 20, 20)
    # fc: 2 images x 5 outputs x 1600 inputs
    assert by["fc"]["macs"] == 2 * 5 * 4 * 20 * 20
    assert by["fc"]["params"] == 5 * 1600 + 5
    total = cost.summarize(rows, net)
    assert total["params"] == 224 + 132 + 8005
    # the caffemodel holds every parameter as fp32, plus a little protobuf framing
    assert 4 * total["params"] < total["caffemodel_bytes"] < 4 * total["params"] + 2000


def test_depthwise_convolution_counts_like_grouped_convolution():
    ns = caffe.NetSpec()
    ns.data = L.Input(shape=dict(dim=[1, 6, 10, 10]))
    ns.dw = L.DepthwiseConvolution(ns.data, convolution_param=dict(
        num_output=6, group=6, kernel_size=3, pad=1, stride=2, bias_term=False))
    rows, _ = cost.layer_costs(ns.to_proto())
    dw = {r["name"]: r for r in rows}["dw"]
    assert dw["macs"] == 6 * 5 * 5 * 9  # each of 6 x 5 x 5 outputs: one channel's 3 x 3 taps
    assert dw["params"] == 6 * 9


def test_with_rois_counts_the_tail_n_times():
    cfg = load_config("fassst_cpu_sample")
    deploy = build_net(cfg, "deploy")
    one, _ = cost.layer_costs(cost.with_rois(deploy, 1))
    three, _ = cost.layer_costs(cost.with_rois(deploy, 3))

    def tail(rows):
        return sum(r["macs"] for r in rows if cost.group_of(r["name"]) == "mask tail")

    def rest(rows):
        return sum(r["macs"] for r in rows if cost.group_of(r["name"]) != "mask tail")

    assert tail(three) == 3 * tail(one) > 0
    assert rest(three) == rest(one) > 0


@pytest.mark.parametrize("name", ["fassst_416_coco", "fassst_768_cityscapes"])
def test_default_configs_reproduce_paper_cost(name):
    summary = cost.count(load_config(name))
    paper = summary["paper"]
    gflops, mb = summary["gmacs"], summary["caffemodel_mb"]
    assert abs(gflops / paper["gflops"] - 1) <= paper["gflops_tol"], gflops
    assert abs(mb / paper["mb"] - 1) <= paper["mb_tol"], mb
