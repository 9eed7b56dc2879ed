"""IAMDecode through pycaffe/NetSpec against an independent numpy decode, at paper sizes.

The layer's contract (layers/include/caffe/layers/iam_decode_layer.hpp): per slot, sigmoid of
everything; box (l W, t H, r W, b H) with crossed edges swapped, clipped to the image, each side
at least min_box_size (grown about its centre, shifted inside; the whole side if the image is
smaller); score = max class probability, label = its class; keep score > threshold, per image by
score descending then slot, at most top_k (0 = all). With box_coding CELL every edge fraction
s is first moved to the slot's cell centre c: c + 2 s - 1.
"""

import numpy as np
import pytest

import caffe
from caffe import layers as L, params as P
from fassst.data.assign import assign
from fassst.net.load import caffe_net

ATOL = 1e-4


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def side_ref(a, b, extent, min_size):
    """One box axis from edge fractions a, b (arrays): swap, scale, clip, min size."""
    lo = np.clip(np.minimum(a, b) * extent, 0, extent)
    hi = np.clip(np.maximum(a, b) * extent, 0, extent)
    short = hi - lo < min_size
    if extent <= min_size:
        return np.where(short, 0.0, lo), np.where(short, float(extent), hi)
    centre = (lo + hi) / 2
    lo_grown = np.clip(centre - min_size / 2, 0, extent - min_size)
    return np.where(short, lo_grown, lo), np.where(short, lo_grown + min_size, hi)


def decode_ref(slots, thr, top_k, width, height, min_size, cell=False):
    """slots: (N, n, 4 + C). Returns rois (R, 5), scores, labels, slot indices, in float64."""
    x = slots.astype(np.float64)
    t, l, b, r = (sigmoid(x[..., i]) for i in range(4))
    if cell:  # a square grid, slot = row * S + col
        side = int(round(np.sqrt(x.shape[1])))
        row, col = np.divmod(np.arange(x.shape[1]), side)
        cy, cx = (row + 0.5) / side, (col + 0.5) / side
        t, b = cy + 2 * t - 1, cy + 2 * b - 1
        l, r = cx + 2 * l - 1, cx + 2 * r - 1
    x1, x2 = side_ref(l, r, width, min_size)
    y1, y2 = side_ref(t, b, height, min_size)
    prob = sigmoid(x[..., 4:])
    score, label = prob.max(-1), prob.argmax(-1)
    rows = []
    for i in range(x.shape[0]):
        keep = np.flatnonzero(score[i] > thr)
        keep = keep[np.lexsort((keep, -score[i, keep]))]
        if top_k:
            keep = keep[:top_k]
        for s in keep:
            rows.append((i, x1[i, s], y1[i, s], x2[i, s], y2[i, s], score[i, s], label[i, s], s))
    a = np.array(rows, np.float64).reshape(-1, 8)
    return a[:, :5], a[:, 5], a[:, 6].astype(int), a[:, 7].astype(int)


def build_net(shape, slot_top=True, **param):
    ns = caffe.NetSpec()
    ns.iam = L.Input(shape=dict(dim=list(shape)))
    names = ["rois", "scores", "labels"] + (["slots"] if slot_top else [])
    tops = L.IAMDecode(ns.iam, ntop=len(names), iam_decode_param=param)
    for name, top in zip(names, tops):
        setattr(ns, name, top)
    return load(ns)


def load(ns, force_backward=False):
    proto = ns.to_proto()
    proto.force_backward = force_backward
    return caffe_net(proto, caffe.TEST)


def random_iam(rng, n_img, n_slots, n_cls):
    """(N, n, 4 + C) float32: edges spread enough to cross often; class logits with a per-slot
    offset ("objectness"), so thresholds between 0.05 and 0.9 each keep part of the slots."""
    edges = rng.normal(0, 2, (n_img, n_slots, 4))
    logits = rng.normal(0, 1, (n_img, n_slots, n_cls)) + rng.normal(-3, 3, (n_img, n_slots, 1))
    return np.concatenate([edges, logits], -1).astype(np.float32)


def to_map(slots):
    """(N, S*S, V) -> the (N, V, S, S) conv map it came from (slot = y * S + x)."""
    n_img, n_slots, v = slots.shape
    s = int(round(np.sqrt(n_slots)))
    return np.ascontiguousarray(slots.transpose(0, 2, 1).reshape(n_img, v, s, s))


def run_and_compare(slots, layout, thr, top_k, width=416, height=416, min_size=1.0, cell=False):
    n_cls = slots.shape[2] - 4
    data = slots if layout == "slots" else to_map(slots)
    coding = dict(box_coding=P.IAMDecode.CELL) if cell else {}
    net = build_net(data.shape, num_classes=n_cls, score_threshold=thr, top_k=top_k,
                    image_width=width, image_height=height, min_box_size=min_size, **coding)
    net.blobs["iam"].data[...] = data
    out = net.forward()
    rois, scores, labels, slot_idx = decode_ref(slots, thr, top_k, width, height, min_size, cell)
    R = len(scores)
    assert out["rois"].shape == (R, 5)
    assert out["scores"].shape == out["labels"].shape == out["slots"].shape == (R,)
    np.testing.assert_array_equal(out["rois"][:, 0], rois[:, 0])
    np.testing.assert_array_equal(out["slots"], slot_idx)
    np.testing.assert_array_equal(out["labels"], labels)
    # The layer computes in float32: a few ulps of a coordinate, 3e-5 each at 416 (inside ATOL),
    # 6e-5 each at 768, where two are allowed.
    box_atol = max(ATOL, 2 * float(np.spacing(np.float32(max(width, height)))))
    np.testing.assert_allclose(out["rois"][:, 1:], rois[:, 1:], rtol=0, atol=box_atol)
    np.testing.assert_allclose(out["scores"], scores, rtol=0, atol=ATOL)
    return R


@pytest.mark.parametrize("layout", ["slots", "map"])
@pytest.mark.parametrize("n_img,n_slots,n_cls", [(2, 36, 80), (4, 49, 8)])
def test_matches_numpy_decode(layout, n_img, n_slots, n_cls):
    """Paper sizes (FASSST-416 COCO n=36 C=80; Cityscapes n=49 C=8), several thresholds/top_k."""
    rng = np.random.default_rng(n_slots)
    slots = random_iam(rng, n_img, n_slots, n_cls)
    crossed = (slots[..., 1] > slots[..., 3]) | (slots[..., 0] > slots[..., 2])
    assert crossed.mean() > 0.5  # the swap is exercised
    counts = {}
    for thr in (0.05, 0.3, 0.5, 0.9):
        for top_k in (0, 5, n_slots, 100):
            counts[thr, top_k] = run_and_compare(slots, layout, thr, top_k)
    assert 0 < counts[0.9, 0] < counts[0.5, 0] < counts[0.05, 0] < n_img * n_slots
    assert counts[0.05, 5] == 5 * n_img
    assert counts[0.05, n_slots] == counts[0.05, 100] == counts[0.05, 0]


@pytest.mark.parametrize("layout", ["slots", "map"])
@pytest.mark.parametrize("n_slots", [16, 36])
def test_cell_coding_matches_numpy_decode(layout, n_slots):
    rng = np.random.default_rng(n_slots + 1)
    slots = random_iam(rng, 2, n_slots, 8)
    for thr, top_k in ((0.05, 0), (0.5, 5)):
        assert run_and_compare(slots, layout, thr, top_k, 320, 256, 2.0, cell=True) > 4


@pytest.mark.parametrize("coding", ["image", "cell"])
def test_assigned_targets_decode_to_the_ground_truth_boxes(coding):
    """The data side's loc targets (data/assign.py) and the layer's decoding are inverses: the
    targets' logits, decoded, give back each assigned box, whichever slot (home cell or a
    neighbour) it landed in."""
    side, grid, n_cls = 320, 6, 3
    rng = np.random.default_rng(11)
    x1y1 = rng.uniform(0, side - 40, (20, 2))
    boxes = np.concatenate([x1y1, x1y1 + rng.uniform(8, 120, (20, 2))], 1).clip(0, side)
    boxes[5:9] = boxes[4]  # a clash: three of them end in neighbour cells
    classes = rng.integers(0, n_cls, 20)
    a = assign(boxes, classes, (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
               grid, n_cls, side, side, box_coding=coding)
    home = [int((b[1] + b[3]) / 2 // (side / grid)) * grid + int((b[0] + b[2]) / 2 // (side / grid))
            for b in boxes]
    assert any(home[i] != s for s, i in a.pairs)  # a neighbour slot is exercised
    target = a.loc_target.astype(np.float64).clip(1e-7, 1 - 1e-7)
    slots = np.concatenate([np.log(target / (1 - target)), np.where(a.cls_target > 0, 8.0, -8.0)],
                           1)[None].astype(np.float32)
    coding_param = dict(box_coding=P.IAMDecode.CELL) if coding == "cell" else {}
    net = build_net(slots.shape, num_classes=n_cls, score_threshold=0.5, image_width=side,
                    image_height=side, min_box_size=0.0, **coding_param)
    net.blobs["iam"].data[...] = slots
    out = net.forward()
    assert sorted(out["slots"].astype(int)) == [s for s, _ in a.pairs]
    for k, slot in enumerate(out["slots"].astype(int)):
        np.testing.assert_allclose(out["rois"][k, 1:], boxes[dict(a.pairs)[slot]], atol=2e-3)


@pytest.mark.parametrize("width,height,min_size", [(768, 384, 40.0), (416, 416, 0.0),
                                                   (30, 416, 50.0)])
def test_matches_numpy_decode_size_and_min_box(width, height, min_size):
    """Non-square images, large min_box_size (many boxes grown, some shifted at a border), none,
    and an image side below min_box_size."""
    rng = np.random.default_rng(7)
    slots = random_iam(rng, 2, 36, 80)
    assert run_and_compare(slots, "slots", 0.05, 0, width, height, min_size) > 20


def test_zero_rois():
    """Nothing above the threshold: empty tops of the right rank, and a later forward with
    ROIs works again."""
    rng = np.random.default_rng(3)
    slots = random_iam(rng, 2, 36, 80)
    slots[..., 4:] = np.minimum(slots[..., 4:], -1)  # every probability <= sigmoid(-1) = 0.27
    net = build_net(slots.shape, score_threshold=0.5)
    net.blobs["iam"].data[...] = slots
    out = net.forward()
    assert out["rois"].shape == (0, 5)
    assert out["scores"].shape == out["labels"].shape == out["slots"].shape == (0,)
    assert run_and_compare(slots, "slots", 0.5, 0) == 0
    slots[..., 4] = 1  # class 0 at probability 0.73 in every slot: all kept
    net.blobs["iam"].data[...] = slots
    assert net.forward()["rois"].shape == (72, 5)


def test_three_tops_and_defaults():
    """Without the slot top; defaults num_classes 80, threshold 0.05, 416 x 416."""
    rng = np.random.default_rng(5)
    slots = random_iam(rng, 1, 36, 80)
    net = build_net(slots.shape, slot_top=False)
    net.blobs["iam"].data[...] = slots
    out = net.forward()
    rois, scores, labels, _ = decode_ref(slots, 0.05, 0, 416, 416, 1.0)
    assert set(out) == {"rois", "scores", "labels"}
    np.testing.assert_array_equal(out["labels"], labels)
    np.testing.assert_allclose(out["rois"], rois, rtol=0, atol=ATOL)


def test_backward_contributes_zero_through_split():
    """The IAM output feeds the decode and a loss; Caffe inserts a Split that sums both branches'
    diffs. The decode branch must add exactly zero: the diff is the loss's alone (2 x)."""
    rng = np.random.default_rng(11)
    slots = random_iam(rng, 2, 36, 80)
    ns = caffe.NetSpec()
    ns.iam = L.Input(shape=dict(dim=list(slots.shape)))
    ns.rois, ns.scores, ns.labels = L.IAMDecode(ns.iam, ntop=3)
    ns.loss = L.Reduction(ns.iam, operation=P.Reduction.SUMSQ, loss_weight=1)
    net = load(ns, force_backward=True)
    assert any(layer.type == "Split" for layer in net.layers)
    net.blobs["iam"].data[...] = slots
    net.forward()
    net.blobs["iam"].diff[...] = 123  # whatever was there before must not leak through
    net.backward()
    np.testing.assert_array_equal(net.blobs["iam"].diff, 2 * slots)


def test_param_is_in_caffe_proto():
    field = caffe.proto.caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name["iam_decode_param"]
    assert field.number == 4002
    p = caffe.proto.caffe_pb2.IAMDecodeParameter()
    assert (p.num_classes, p.top_k, p.image_width, p.image_height) == (80, 0, 416, 416)
