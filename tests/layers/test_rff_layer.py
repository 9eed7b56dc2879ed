"""ROIFeatureFusion through pycaffe/NetSpec against an independent OpenCV reference, at paper size."""

import cv2
import numpy as np
import pytest

import caffe
from caffe import layers as L
from fassst.net.load import caffe_net

R, C, S = 36, 256, 7  # paper: 36 ROIs, D = 256, R3 7x7, R2 14x14, R1 28x28


def up2_cv2(x):
    """x2 bilinear upsampling of (R, C, H, W) with OpenCV (half-pixel centres, the layer's contract)."""
    n, c, h, w = x.shape
    out = np.empty((n, c, 2 * h, 2 * w), np.float32)
    for i in range(n):
        for c0 in range(0, c, 64):  # OpenCV 5 takes HWC images of at most 128 channels
            hwc = np.ascontiguousarray(x[i, c0:c0 + 64].transpose(1, 2, 0))
            up = cv2.resize(hwc, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
            out[i, c0:c0 + 64] = up.reshape(2 * h, 2 * w, -1).transpose(2, 0, 1)
    return out


def up2_matrix(n):
    """(2n, n) interpolation matrix, read off OpenCV by resizing each unit vector."""
    eye = np.eye(n, dtype=np.float64)
    return np.stack([cv2.resize(eye[:, j:j + 1], (1, 2 * n), interpolation=cv2.INTER_LINEAR)[:, 0]
                     for j in range(n)], axis=1)


def build_net(shapes, relu=True, tail_conv=False):
    ns = caffe.NetSpec()
    ns.r1, ns.r2, ns.r3 = [L.Input(shape=dict(dim=list(s))) for s in shapes]
    ns.rff = L.ROIFeatureFusion(ns.r1, ns.r2, ns.r3, roi_feature_fusion_param=dict(relu=relu))
    if tail_conv:
        ns.tail = L.Convolution(ns.rff, num_output=4, kernel_size=3, pad=1,
                                weight_filler=dict(type="gaussian", std=0.1))
    proto = ns.to_proto()
    proto.force_backward = True
    return caffe_net(proto, caffe.TEST)


@pytest.fixture(scope="module")
def paper_inputs():
    rng = np.random.default_rng(0)
    return [rng.standard_normal((R, C, k * S, k * S)).astype(np.float32) for k in (4, 2, 1)]


@pytest.mark.parametrize("relu", [True, False])
def test_forward_matches_opencv_at_paper_size(paper_inputs, relu):
    r1, r2, r3 = paper_inputs
    net = build_net([x.shape for x in paper_inputs], relu=relu)
    for name, x in zip(("r1", "r2", "r3"), paper_inputs):
        net.blobs[name].data[...] = x
    out = net.forward()["rff"]
    pre = r1 + up2_cv2(r2 + up2_cv2(r3))
    ref = np.maximum(pre, 0) if relu else pre
    assert out.shape == (R, C, 4 * S, 4 * S)
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-5)
    if relu:
        assert (out == 0).mean() > 0.3  # the ReLU really clips (about half of a Gaussian sum)


def test_backward_matches_adjoint_of_opencv_interpolation(paper_inputs):
    """Gradients equal the transpose of OpenCV's interpolation matrices applied to the top diff."""
    rng = np.random.default_rng(1)
    r1, r2, r3 = paper_inputs
    net = build_net([x.shape for x in paper_inputs])
    for name, x in zip(("r1", "r2", "r3"), paper_inputs):
        net.blobs[name].data[...] = x
    net.forward()
    g = rng.standard_normal(net.blobs["rff"].shape).astype(np.float32)
    net.blobs["rff"].diff[...] = g
    net.backward()
    a14, a7 = up2_matrix(2 * S), up2_matrix(S)
    d1 = g * (net.blobs["rff"].data > 0)
    d2 = np.einsum("yi,rcyx,xj->rcij", a14, d1.astype(np.float64), a14)
    d3 = np.einsum("yi,rcyx,xj->rcij", a7, d2, a7)
    np.testing.assert_allclose(net.blobs["r1"].diff, d1, atol=1e-5)
    np.testing.assert_allclose(net.blobs["r2"].diff, d2, atol=1e-4)
    np.testing.assert_allclose(net.blobs["r3"].diff, d3, atol=1e-4)


def test_zero_rois_flow_through_rff_and_a_stock_layer():
    """A batch with no ROIs: empty blobs pass RFF and the Convolution after it (overlay patch 5)."""
    net = build_net([(0, 8, 28, 28), (0, 8, 14, 14), (0, 8, 7, 7)], tail_conv=True)
    out = net.forward()
    assert net.blobs["rff"].data.shape == (0, 8, 28, 28)
    assert out["tail"].shape == (0, 4, 28, 28)
    net.backward()
    assert not np.isnan(net.params["tail"][0].diff).any()


def test_param_is_in_caffe_proto():
    """The overlay put the project's message into caffe.proto at its reserved field id."""
    field = caffe.proto.caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name["roi_feature_fusion_param"]
    assert field.number == 4001
    p = caffe.proto.caffe_pb2.ROIFeatureFusionParameter()
    assert p.relu is True


def test_zero_rois_through_batchnorm_in_training():
    """The mask tail normalises over ROIs: an empty ROI batch must not crash Caffe's BatchNorm
    (upstream divides by N, SIGFPE) nor touch its running statistics (overlay patch 6)."""
    ns = caffe.NetSpec()
    ns.x = L.Input(shape=dict(dim=[0, 4, 3, 3]))
    ns.bn = L.BatchNorm(ns.x, use_global_stats=False)
    proto = ns.to_proto()
    proto.force_backward = True
    net = caffe_net(proto, caffe.TRAIN)
    net.forward()
    net.backward()
    assert net.blobs["bn"].data.shape == (0, 4, 3, 3)
    for blob in net.params["bn"]:
        assert np.all(blob.data == 0)  # no NaN, no update from an empty batch
