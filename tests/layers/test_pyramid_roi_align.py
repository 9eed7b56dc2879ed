"""PyramidROIAlign through pycaffe/NetSpec against an independent numpy ROIAlign, at paper size.

The reference follows detectron2's ROIAlign (aligned half-pixel shift, samples beyond one pixel
of the map are 0, others clamped into it) but is built differently from the layer: ROIAlign of a
box is separable, out = Ay F Ax^T / count, with Ay (cells x H) summing each cell's bilinear tap
weights along y (zero for samples outside [-1, H]); the backward is its adjoint Ay^T G Ax.
"""
import math

import numpy as np
import pytest

import caffe
from caffe import layers as L
from fassst.net.load import caffe_net

N, C, IMG, S0, P = 2, 256, 416, 8, 7  # paper: D = 256, 416 input, P1..P3 52/26/13, R3 7x7
MAPS = [IMG // (S0 << k) for k in range(3)]  # 52, 26, 13
CELLS = [P << (2 - k) for k in range(3)]  # 28, 14, 7


def axis_weights(start, size, cells, grid, n):
    """(cells, n): row i = sum over cell i's samples of their bilinear weights on a side of n."""
    a = np.zeros((cells, n))
    if grid <= 0:
        return a
    step = size / cells
    s = start + np.arange(cells)[:, None] * step + (np.arange(grid)[None, :] + 0.5) * step / grid
    live = (s >= -1) & (s <= n)
    s = np.maximum(s, 0)
    lo = np.floor(s).astype(int)
    past = lo >= n - 1
    lo = np.where(past, n - 1, lo)
    s = np.where(past, lo, s)
    hi = np.minimum(lo + 1, n - 1)
    frac = s - lo
    rows = np.repeat(np.arange(cells), grid)
    np.add.at(a, (rows, lo.ravel()), ((1 - frac) * live).ravel())
    np.add.at(a, (rows, hi.ravel()), (frac * live).ravel())
    return a


def roi_operators(roi, scale, cells, shape, sampling, aligned):
    """(Ay, Ax, count) of one roi (batch, x1, y1, x2, y2) on a map of shape (H, W)."""
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (v * scale - off for v in roi[1:])
    w, h = x2 - x1, y2 - y1
    if not aligned:
        w, h = max(w, 1.0), max(h, 1.0)
    gy = sampling if sampling > 0 else max(math.ceil(h / cells), 0)
    gx = sampling if sampling > 0 else max(math.ceil(w / cells), 0)
    return (axis_weights(y1, h, cells, gy, shape[0]), axis_weights(x1, w, cells, gx, shape[1]),
            max(gy * gx, 1))


def roi_align_ref(feat, rois, scale, cells, sampling, aligned):
    out = np.empty((len(rois), feat.shape[1], cells, cells))
    for r, roi in enumerate(rois.astype(np.float64)):
        ay, ax, count = roi_operators(roi, scale, cells, feat.shape[2:], sampling, aligned)
        out[r] = ay @ feat[int(roi[0])].astype(np.float64) @ ax.T / count
    return out


def roi_align_adjoint_ref(grad, rois, feat_shape, scale, sampling, aligned):
    din = np.zeros(feat_shape)
    for r, roi in enumerate(rois.astype(np.float64)):
        ay, ax, count = roi_operators(roi, scale, grad.shape[2], feat_shape[2:], sampling, aligned)
        din[int(roi[0])] += ay.T @ grad[r].astype(np.float64) @ ax / count
    return din


def build_net(n, c, maps, num_rois, param, rff=False):
    ns = caffe.NetSpec()
    ns.p1, ns.p2, ns.p3 = [L.Input(shape=dict(dim=[n, c, m, m])) for m in maps]
    ns.rois = L.Input(shape=dict(dim=[num_rois, 5]))
    ns.r1, ns.r2, ns.r3 = L.PyramidROIAlign(ns.p1, ns.p2, ns.p3, ns.rois, ntop=3,
                                            pyramid_roi_align_param=param)
    if rff:
        ns.rff = L.ROIFeatureFusion(ns.r1, ns.r2, ns.r3)
    proto = ns.to_proto()
    proto.force_backward = True
    return caffe_net(proto, caffe.TEST)


def random_rois(rng, count):
    """Boxes across the image, a third of them straddling its border, one tiny, one outside."""
    rois = np.empty((count, 5), np.float32)
    rois[:, 0] = rng.integers(0, N, count)
    size = np.exp(rng.uniform(np.log(4), np.log(320), (count, 2)))
    centre = rng.uniform(0, IMG, (count, 2))
    edge = rng.integers(0, 4, count // 3)  # centre on the left, top, right or bottom edge
    centre[np.arange(count // 3), edge % 2] = np.where(edge < 2, 0, IMG)
    rois[:, 1:3] = centre - size / 2
    rois[:, 3:5] = centre + size / 2
    rois[-2, 1:] = (200.3, 100.7, 201.1, 101.2)  # below one P1 pixel
    rois[-1, 1:] = (500, 440, 600, 520)  # beyond the image (and one pixel of every map)
    return rois


@pytest.fixture(scope="module")
def paper_case():
    rng = np.random.default_rng(0)
    feats = [rng.standard_normal((N, C, m, m)).astype(np.float32) for m in MAPS]
    rois = random_rois(rng, 36)
    lo, hi = rois[:, 1:3], rois[:, 3:5]
    crosses = ((lo < 0) & (hi > 0)) | ((lo < IMG) & (hi > IMG))
    assert crosses.any(axis=1).sum() >= 10 and set(rois[:, 0]) == {0, 1}
    return feats, rois


def run_forward(net, feats, rois):
    for name, x in zip(("p1", "p2", "p3", "rois"), feats + [rois]):
        net.blobs[name].data[...] = x
    out = net.forward()
    return [out[t] for t in ("r1", "r2", "r3")]


@pytest.mark.parametrize("sampling,aligned", [(2, True), (0, False)])
def test_forward_matches_numpy_at_paper_size(paper_case, sampling, aligned):
    feats, rois = paper_case
    param = dict(pooled_size=P, first_stride=S0, sampling_ratio=sampling, aligned=aligned)
    net = build_net(N, C, MAPS, len(rois), param)
    outs = run_forward(net, feats, rois)
    for k in range(3):
        ref = roi_align_ref(feats[k], rois, 1.0 / (S0 << k), CELLS[k], sampling, aligned)
        assert outs[k].shape == (36, C, CELLS[k], CELLS[k])
        np.testing.assert_allclose(outs[k], ref, rtol=0, atol=1e-4, err_msg=f"R{k + 1}")
    assert not outs[0][-1].any() and outs[0][:-1].any(axis=(1, 2, 3)).all()


def test_backward_matches_numpy_adjoint(paper_case):
    feats, rois = paper_case
    rng = np.random.default_rng(1)
    net = build_net(N, C, MAPS, len(rois), dict(pooled_size=P, first_stride=S0))
    run_forward(net, feats, rois)
    grads = []
    for t in ("r1", "r2", "r3"):
        grads.append(rng.standard_normal(net.blobs[t].shape).astype(np.float32))
        net.blobs[t].diff[...] = grads[-1]
    net.blobs["rois"].diff[...] = 7
    net.backward()
    for k, name in enumerate(("p1", "p2", "p3")):
        ref = roi_align_adjoint_ref(grads[k], rois, feats[k].shape, 1.0 / (S0 << k), 2, True)
        # A P1 pixel sums float32 contributions of up to ~100 cells of overlapping ROIs
        # (|grad| up to ~30), so the tolerance is relative as well.
        np.testing.assert_allclose(net.blobs[name].diff, ref, rtol=1e-4, atol=1e-4, err_msg=name)
    # force_backward does not reach the boxes: the layer leaves their diff alone.
    assert (net.blobs["rois"].diff == 7).all()


def test_numpy_reference_adjoint_identity():
    """The numpy reference itself: its backward is the adjoint, <A x, g> = <x, A^T g>."""
    rng = np.random.default_rng(2)
    feat = rng.standard_normal((2, 3, 9, 7))
    rois = np.array([[0, -5, 3, 20, 40], [1, 2.2, 2.4, 3.1, 2.9], [1, 10, 10, 60, 30]])
    for sampling, aligned in ((2, True), (0, False)):
        g = rng.standard_normal((3, 3, 4, 4))
        fwd = roi_align_ref(feat, rois, 0.25, 4, sampling, aligned)
        adj = roi_align_adjoint_ref(g, rois, feat.shape, 0.25, sampling, aligned)
        assert np.isclose((fwd * g).sum(), (feat * adj).sum())


def test_zero_rois_through_pycaffe():
    """No ROIs in the batch: empty tops that also flow through ROIFeatureFusion; zero diffs."""
    net = build_net(N, 8, MAPS, 0, dict(pooled_size=P, first_stride=S0), rff=True)
    for name in ("p1", "p2", "p3"):
        net.blobs[name].data[...] = 1
        net.blobs[name].diff[...] = 5
    out = net.forward()
    assert [net.blobs[t].data.shape for t in ("r1", "r2", "r3")] == [
        (0, 8, 28, 28), (0, 8, 14, 14), (0, 8, 7, 7)]
    assert out["rff"].shape == (0, 8, 28, 28)
    net.backward()
    for name in ("p1", "p2", "p3"):
        assert not net.blobs[name].diff.any()


def test_param_is_in_caffe_proto():
    fields = caffe.proto.caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    field = fields["pyramid_roi_align_param"]
    assert field.number == 4003
    p = caffe.proto.caffe_pb2.PyramidROIAlignParameter()
    assert (p.pooled_size, p.first_stride, p.sampling_ratio, p.aligned) == (7, 8, 2, True)
