"""DiceLoss and SigmoidFocalLoss through pycaffe/NetSpec against independent numpy references
(float64), at paper sizes: 36 ROIs of 56x56 masks; 8 images x 36 slots x 80 classes; 4 coordinates.

The references are written from the definitions (naive log-sigmoid, no shared code with the
layers); their analytic gradients are themselves checked by finite differences in float64.
Tolerances: 1e-4 relative. Gradients also get an absolute floor of 1e-4 x their largest magnitude,
since float32 cannot give 1e-4 relative accuracy on elements many orders below the largest.
"""

import numpy as np
import pytest

import caffe
from caffe import layers as L
from caffe.proto import caffe_pb2
from fassst.net.load import caffe_net

FocalParam = caffe_pb2.SigmoidFocalLossParameter
RTOL = 1e-4


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---- numpy references (float64) ----

def dice_ref(x, g, eps=1.0):
    """Loss mean_r(1 - D_r) and dloss/dx for (R, ...) logits x and targets g."""
    r = x.shape[0]
    p, g = sigmoid(x).reshape(r, -1), g.reshape(r, -1).astype(np.float64)
    inter, s = (p * g).sum(1), p.sum(1) + g.sum(1) + eps
    d = (2 * inter + eps) / s
    # dD/dp_j = (2 g_j S - (2 I + eps)) / S^2 = (2 g_j - D) / S
    grad = -((2 * g - d[:, None]) / s[:, None]) * p * (1 - p) / r
    return (1 - d).mean(), grad.reshape(x.shape)


def focal_ref(x, y, w, alpha, gamma, norm):
    """Sum of w alpha_t |y - p|^gamma BCE over elements / norm, and its gradient."""
    x, y, w = (a.astype(np.float64) for a in (x, y, w))
    p = sigmoid(x)
    bce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    at = alpha * y + (1 - alpha) * (1 - y) if alpha >= 0 else np.ones_like(y)
    ad = np.abs(y - p)
    m = ad ** gamma
    with np.errstate(divide="ignore", invalid="ignore"):
        focus = np.where(ad > 0, gamma * ad ** (gamma - 1) * np.sign(p - y) * p * (1 - p) * bce, 0)
    grad = w * at * (focus + m * (p - y)) / norm
    return (w * at * m * bce).sum() / norm, grad


def finite_difference(loss_fn, x, idx, h=1e-5):
    """Central differences of the float64 loss at the flat indices idx."""
    x = x.astype(np.float64)
    out = []
    for i in idx:
        xp, xm = x.copy(), x.copy()
        xp.flat[i] += h
        xm.flat[i] -= h
        out.append((loss_fn(xp) - loss_fn(xm)) / (2 * h))
    return np.array(out)


def assert_grad_close(actual, ref):
    np.testing.assert_allclose(actual, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())


def spot_check(loss_fn, x, idx, ref_grad, layer_grad):
    """Finite differences (float64, h = 1e-5) at idx against the analytic reference gradient
    (1e-5 relative: truncation ~h^2, round-off ~1e-16 |loss| / h) and against the layer's.
    Indices with the largest reference gradients are added, so the check is not all near-zeros."""
    idx = list(idx) + np.argsort(np.abs(ref_grad).ravel())[-2:].tolist()
    fd = finite_difference(loss_fn, x, idx)
    floor = np.abs(ref_grad).max()
    np.testing.assert_allclose(ref_grad.flat[idx], fd, rtol=1e-5, atol=1e-5 * floor)
    np.testing.assert_allclose(layer_grad.flat[idx], fd, rtol=RTOL, atol=RTOL * floor)


# ---- nets ----

def load(ns):
    proto = ns.to_proto()
    proto.force_backward = True
    return caffe_net(proto, caffe.TEST)


def run(net, **inputs):
    """Forward and backward with the given bottoms; returns the loss and the logits' gradient."""
    for name, value in inputs.items():
        net.blobs[name].data[...] = value
    loss = float(net.forward()["loss"])
    net.backward()
    return loss, net.blobs["x"].diff.copy()


def dice_net(shape, loss_weight, eps=1.0):
    ns = caffe.NetSpec()
    ns.x, ns.g = [L.Input(shape=dict(dim=list(shape))) for _ in range(2)]
    ns.loss = L.DiceLoss(ns.x, ns.g, dice_loss_param=dict(eps=eps), loss_weight=loss_weight)
    return load(ns)


def focal_net(shape, loss_weight, norm_blob=False, **param):
    ns = caffe.NetSpec()
    ns.x, ns.y, ns.w = [L.Input(shape=dict(dim=list(shape))) for _ in range(3)]
    bottoms = [ns.x, ns.y, ns.w]
    if norm_blob:
        ns.norm = L.Input(shape=dict(dim=[1]))
        bottoms.append(ns.norm)
    ns.loss = L.SigmoidFocalLoss(*bottoms, sigmoid_focal_loss_param=param, loss_weight=loss_weight)
    return load(ns)


# ---- Dice: 36 ROIs x 1 x 56 x 56 ----

@pytest.fixture(scope="module")
def masks():
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal((36, 1, 56, 56))).astype(np.float32)
    density = rng.uniform(0.05, 0.9, size=(36, 1, 1, 1))
    g = (rng.uniform(size=x.shape) < density).astype(np.float32)
    g[3] = 0  # an empty target mask
    return x, g


def test_dice_matches_numpy_at_paper_size(masks):
    x, g = masks
    lw = 5.75  # the paper's weight of Lm
    loss, grad = run(dice_net(x.shape, lw), x=x, g=g)
    ref_loss, ref_grad = dice_ref(x.astype(np.float64), g)
    assert 0 < ref_loss < 1
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL)  # the top holds the unweighted loss
    assert_grad_close(grad, lw * ref_grad)
    # Spot check: the reference gradient against finite differences, and so the layer's.
    idx = [0, 3 * 3136 + 17, 10 * 3136 + 1234, 35 * 3136 + 3135]
    spot_check(lambda v: dice_ref(v, g)[0], x, idx, ref_grad, grad / lw)


def test_dice_eps_and_perfect_masks():
    rng = np.random.default_rng(1)
    g = (rng.uniform(size=(4, 1, 56, 56)) < 0.3).astype(np.float32)
    x = np.where(g > 0, 100, -100).astype(np.float32)  # sigmoid is the mask itself
    loss, grad = run(dice_net(x.shape, 1.0, eps=0.5), x=x, g=g)
    assert abs(loss) < 1e-6 and np.isfinite(grad).all() and np.abs(grad).max() < 1e-20


def test_dice_zero_rois():
    loss, grad = run(dice_net((0, 1, 56, 56), 5.75),
                     x=np.zeros((0, 1, 56, 56), np.float32), g=np.zeros((0, 1, 56, 56), np.float32))
    assert loss == 0 and grad.shape == (0, 1, 56, 56)


# ---- Focal: classes (8, 36, 80) and coordinates (8, 36, 4) ----

@pytest.fixture(scope="module")
def slots():
    """Assigned slots: about 6 of 36 per image; a few slots (one of them assigned) are ignored."""
    rng = np.random.default_rng(2)
    assigned = rng.uniform(size=(8, 36)) < 6 / 36
    ignored = rng.uniform(size=(8, 36)) < 0.1
    ignored[np.argwhere(assigned)[0][0], np.argwhere(assigned)[0][1]] = True
    return rng, assigned, ignored


def test_focal_classes_positive_targets(slots):
    rng, assigned, ignored = slots
    shape = (8, 36, 80)
    x = (2 * rng.standard_normal(shape) - 2).astype(np.float32)
    y = np.zeros(shape, np.float32)
    n, s = np.nonzero(assigned)
    y[n, s, rng.integers(0, 80, size=n.size)] = 1
    w = np.broadcast_to(~ignored[..., None], shape).astype(np.float32)
    lw = 1.25  # the paper's weight of Lc
    net = focal_net(shape, lw, alpha=0.25, gamma=2.0, normalization=FocalParam.POSITIVE_TARGETS)
    loss, grad = run(net, x=x, y=y, w=w)
    n_pos = (assigned & ~ignored).sum()  # assigned, not ignored slots
    assert n_pos == ((y > 0) & (w > 0)).sum() and n_pos < assigned.sum()
    ref_loss, ref_grad = focal_ref(x, y, w, 0.25, 2.0, n_pos)
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL)  # the top holds the unweighted loss
    assert_grad_close(grad, lw * ref_grad)
    pos = np.flatnonzero(y)[:2].tolist()
    idx = pos + [5, 1000, 23039]
    spot_check(lambda v: focal_ref(v, y, w, 0.25, 2.0, n_pos)[0], x, idx, ref_grad, grad / lw)


@pytest.mark.parametrize("normalization", ["POSITIVE_WEIGHTS", "BOTTOM"])
def test_focal_coordinates_continuous(slots, normalization):
    """Ll as read: |y - p|^2 BCE on continuous t/l/b/r at assigned slots, alpha disabled."""
    rng, assigned, _ = slots
    shape = (8, 36, 4)
    x = rng.standard_normal(shape).astype(np.float32)
    y = rng.uniform(size=shape).astype(np.float32)
    w = np.broadcast_to(assigned[..., None], shape).astype(np.float32)
    lw = 3.0  # the paper's weight of Ll
    by_bottom = normalization == "BOTTOM"
    net = focal_net(shape, lw, norm_blob=by_bottom, alpha=-1.0, gamma=2.0,
                    normalization=getattr(FocalParam, normalization))
    inputs = dict(x=x, y=y, w=w)
    if by_bottom:
        norm = float(assigned.sum())  # normalised per assigned slot, not per coordinate
        inputs["norm"] = np.array([norm], np.float32)
    else:
        norm = float(w.sum())
    loss, grad = run(net, **inputs)
    ref_loss, ref_grad = focal_ref(x, y, w, -1.0, 2.0, norm)
    np.testing.assert_allclose(loss, ref_loss, rtol=RTOL)  # the top holds the unweighted loss
    assert_grad_close(grad, lw * ref_grad)
    idx = np.flatnonzero(w)[:4].tolist() + [np.flatnonzero(w == 0)[0]]
    spot_check(lambda v: focal_ref(v, y, w, -1.0, 2.0, norm)[0], x, idx, ref_grad, grad / lw)
    assert not net.blobs["y"].diff.any()  # no gradient reaches the targets


def test_focal_extreme_logits_and_no_positives():
    """x = -100 with y = 1 costs alpha x 100, not inf; no positives: the count clamps to 1."""
    shape = (1, 2, 2)
    x = np.array([-100, 100, 100, -100], np.float32).reshape(shape)
    y = np.array([1, 0, 1, 0], np.float32).reshape(shape)
    net = focal_net(shape, 1.0, normalization=FocalParam.POSITIVE_TARGETS)
    loss, grad = run(net, x=x, y=y, w=np.ones(shape, np.float32))
    np.testing.assert_allclose(loss, (25 + 75) / 2, rtol=1e-6)
    np.testing.assert_allclose(grad.ravel(), np.array([-0.25, 0.75, 0, 0]) / 2, atol=1e-7)
    loss, grad = run(net, x=x, y=np.zeros(shape, np.float32), w=np.ones(shape, np.float32))
    np.testing.assert_allclose(loss, 75 + 75, rtol=1e-6)
    assert np.isfinite(grad).all()


def test_params_are_in_caffe_proto():
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    assert fields["dice_loss_param"].number == 4004
    assert fields["sigmoid_focal_loss_param"].number == 4005
    assert caffe_pb2.DiceLossParameter().eps == 1.0
    p = caffe_pb2.SigmoidFocalLossParameter()
    assert (p.alpha, p.gamma, p.normalization) == (0.25, 2.0, FocalParam.POSITIVE_WEIGHTS)
