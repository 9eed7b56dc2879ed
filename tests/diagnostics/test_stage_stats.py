"""diagnostics/stage_stats.py on a hand-built net: each number against its numpy definition."""
import math
import types

import numpy as np
import pytest

from fassst.diagnostics.stage_stats import part_of, relu6_rows, stage_rows


def blob(data, diff=None):
    data = np.asarray(data, np.float32)
    return types.SimpleNamespace(data=data, diff=np.zeros_like(data) if diff is None else
                                 np.asarray(diff, np.float32))


def fake_net(layers, params, blobs):
    """layers: [(name, type, [tops])]."""
    return types.SimpleNamespace(
        _layer_names=[n for n, _, _ in layers],
        layers=[types.SimpleNamespace(type=t) for _, t, _ in layers],
        top_names={n: tops for n, _, tops in layers}, params=params, blobs=blobs)


@pytest.mark.parametrize("layer, part", [
    ("features.18.0", "features.18"), ("features.1.conv.0.0", "features.1"),
    ("features.16/add", "features.16"), ("features.0.0", "features.0"),
    ("p3/lateral/bn", "p3"), ("p1/conv", "p1"), ("iam/conv8", "iam"), ("data", "other"),
    ("loss_mask", "other")])
def test_part_of(layer, part):
    assert part_of(layer) == part


def test_rows_follow_their_definitions():
    rng = np.random.default_rng(0)
    w, u = rng.normal(size=(8, 4)), rng.normal(scale=1e-3, size=(8, 4))
    b, ub = rng.normal(size=8), rng.normal(scale=1e-3, size=8)
    pre = rng.normal(3, 4, size=(2, 8, 3, 3))
    out = np.clip(pre, 0, 6)
    grad = rng.normal(size=out.shape)
    mean, var = rng.normal(size=8), rng.uniform(1, 2, size=8)
    net = fake_net(
        [("features.18.0", "Convolution", ["features.18.0"]),
         ("features.18.1/relu", "ReLU6", ["features.18"]),
         ("p3/lateral", "Convolution", ["p3/lateral"]),
         ("p3/lateral/bn", "BatchNorm", ["p3/lateral"])],
        {"features.18.0": [blob(w, u), blob(b, ub)], "p3/lateral": [blob(w, 0 * w)],
         "p3/lateral/bn": [blob(mean, mean), blob(var, var), blob([1.0], [1.0])]},
        {"features.18.0": blob(pre), "features.18": blob(out, grad),
         "p3/lateral": blob(rng.normal(size=(2, 8)), np.ones((2, 8)))})
    rows = {r["part"]: r for r in stage_rows(net)}
    assert list(rows) == ["features.18", "p3"]
    r = rows["features.18"]
    weights = math.sqrt((w ** 2).sum() + (b ** 2).sum())
    update = math.sqrt((u ** 2).sum() + (ub ** 2).sum())
    assert r["weights"] == pytest.approx(weights, rel=1e-5)
    assert r["update"] == pytest.approx(update, rel=1e-5)
    assert r["ratio"] == pytest.approx(update / weights, rel=1e-5)
    assert r["grad"] == pytest.approx(np.sqrt((grad.astype(np.float32) ** 2).mean()), rel=1e-5)
    assert r["at0"] == pytest.approx((out <= 0).mean()) and r["at6"] == pytest.approx((out >= 6).mean())
    assert 0 < r["at0"] < 1 and 0 < r["at6"] < 1
    p3 = rows["p3"]  # BatchNorm's running statistics are not weights
    assert p3["weights"] == pytest.approx(np.sqrt((w ** 2).sum()), rel=1e-5) and p3["update"] == 0
    assert p3["grad"] == pytest.approx(1.0) and math.isnan(p3["at0"])
    assert relu6_rows(net, {"features.18"}) == [
        ("features.18", "features.18", pytest.approx((out <= 0).mean()),
         pytest.approx((out >= 6).mean()))]
    assert relu6_rows(net, {"features.17"}) == []
