"""The linear probes of diagnostics/feature_probe.py against independent references (OpenCV's
area resize, pycocotools' IoU, numpy's least squares, pair counting), and the probes end to end
on data whose answer is known; then scripts/feature_probe.py on the sample photos."""
import itertools
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fassst.data.assign import home_cells
from fassst.datasets.sample_data import ensure_sample_data
from fassst.diagnostics import feature_probe as fp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cell_pool_is_opencvs_area_resize_where_cells_divide():
    f = np.random.default_rng(0).normal(size=(5, 12, 8)).astype(np.float32)
    ref = cv2.resize(f.transpose(1, 2, 0), (4, 4), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(fp.cell_pool(f, 4), ref, atol=1e-5)


def test_cell_pool_overlapping_cells_where_they_do_not():
    f = np.arange(5.0).reshape(1, 5, 1) * np.ones((1, 1, 5))
    pooled = fp.cell_pool(f, 2)[:, 0, 0]
    assert pooled.tolist() == [1.0, 3.0]  # rows 0-2 and 2-4 (floor / ceil bounds)


def test_centre_cells_and_the_border():
    boxes = [[0, 0, 10, 10], [60, 0, 64, 40], [0, 63, 64, 64], [64, 64, 64, 64]]
    rows, cols = home_cells(boxes, 4, 64, 64)  # what the probe labels cells with
    assert rows.tolist() == [0, 1, 3, 3]
    assert cols.tolist() == [0, 3, 2, 3]  # a centre on the far edge stays in the last cell


def test_roc_auc_counts_pairs_with_ties_as_half():
    rng = np.random.default_rng(1)
    labels = rng.random(60) < 0.3
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    pos, neg = scores[labels], scores[~labels]
    ref = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert fp.roc_auc(labels, scores) == pytest.approx(ref)
    assert np.isnan(fp.roc_auc(np.zeros(4, bool), np.arange(4)))


def test_average_precision_by_hand():
    assert fp.average_precision([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2)
    assert fp.average_precision([0, 1], [0.9, 0.1]) == pytest.approx(0.5)


def test_ridge_is_least_squares_on_the_augmented_system():
    rng = np.random.default_rng(2)
    x, t, lam = rng.normal(size=(40, 6)), rng.normal(size=(40, 3)), 3.0
    w, b = fp.fit_ridge(x, t, lam)
    xc, tc = x - x.mean(0), t - t.mean(0)
    ref = np.linalg.lstsq(np.vstack([xc, np.sqrt(lam) * np.eye(6)]),
                          np.vstack([tc, np.zeros((6, 3))]), rcond=None)[0]
    np.testing.assert_allclose(w, ref, atol=1e-10)
    np.testing.assert_allclose(b, t.mean(0) - x.mean(0) @ ref, atol=1e-10)


def test_logistic_reaches_its_optimum():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 4))
    y = (x @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=200)) > 0
    lam = 0.05
    w, b = fp.fit_logistic(x, y, lam, iters=5000)
    g = 1 / (1 + np.exp(-(x @ w + b))) - y
    np.testing.assert_allclose(x.T @ g / len(y) + lam * w, 0, atol=1e-6)  # the gradient vanishes
    assert abs(g.mean()) < 1e-6


def test_box_iou_is_pycocotools():
    rng = np.random.default_rng(4)
    a = np.sort(rng.uniform(0, 1, (20, 2, 2)), axis=1).transpose(0, 2, 1).reshape(20, 4)[:, [0, 2, 1, 3]]
    b = np.sort(rng.uniform(0, 1, (20, 2, 2)), axis=1).transpose(0, 2, 1).reshape(20, 4)[:, [0, 2, 1, 3]]
    xywh = lambda z: np.stack([z[:, 0], z[:, 1], z[:, 2] - z[:, 0], z[:, 3] - z[:, 1]], 1)  # noqa: E731
    ref = np.diag(mask_utils.iou(xywh(a), xywh(b), [0] * 20))
    np.testing.assert_allclose(fp.box_iou(a, b), ref, atol=1e-9)


def _synthetic(rng, photos, grid=4, informative=True):
    """ProbeData whose features carry the label and the box offset (or, not informative, noise)."""
    n = photos * grid * grid
    label = rng.random(n) < 0.15
    cells = rng.normal(size=(n, 8))
    if informative:
        cells[:, 0] += 3 * label
    m = 300
    offsets = rng.uniform(-0.1, 0.1, (m, 4)) + [-0.1, -0.1, 0.1, 0.1]
    feats = rng.normal(size=(m, 9 * 8))
    if informative:
        feats[:, :4] = offsets * 50
    centre = np.repeat(rng.uniform(0.2, 0.8, (m, 2)), 2, axis=0).reshape(m, 4)[:, [0, 1, 0, 1]]
    return fp.ProbeData(cells, np.tile(np.eye(grid * grid), (photos, 1)), label, feats, centre,
                        centre + offsets, rng.uniform(0, 200 ** 2, m), rng.random(m) < 0.3)


def test_probes_find_what_the_features_carry_and_nothing_else():
    rng = np.random.default_rng(5)
    where = fp.where_probe(_synthetic(rng, 30), _synthetic(rng, 10), [0.01])
    assert where[0.01][2] > 0.95 and where[0.01][3] > 0.8           # scored AUC, AP
    assert 0.35 < where["position"][2] < 0.65                         # position carries nothing
    boxes = fp.box_probe(_synthetic(rng, 30), _synthetic(rng, 10), [1.0])
    assert boxes[1.0]["val"] > 0.95 and boxes["mean offset"]["val"] < 0.5
    noise = fp.where_probe(_synthetic(rng, 30, informative=False),
                           _synthetic(rng, 10, informative=False), [0.01])
    assert noise[0.01][2] < 0.65
    report = fp.format_report(where, boxes, "thing", _synthetic(rng, 3), _synthetic(rng, 1))
    assert "| position only |" in report and "| mean offset |" in report
    assert "network" not in where  # no own output read: no row for it


def test_the_networks_own_output_is_scored_not_fitted():
    rng = np.random.default_rng(6)
    fit, scored = _synthetic(rng, 30), _synthetic(rng, 10)
    fit = fit._replace(cell_own=-fit.cell_label.astype(float))  # fits nothing: inverted
    scored = scored._replace(cell_own=scored.cell_label + rng.normal(0, 0.1, len(scored.cell_label)))
    where = fp.where_probe(fit, scored, [0.01])
    assert where["network"][0] == pytest.approx(0.0) and where["network"][2] == pytest.approx(1.0)
    assert "| the network's own output | 0.000 |" in fp.format_report(
        where, fp.box_probe(fit, scored, [1.0]), "thing", fit, scored)


def test_script_on_the_sample_photos(tmp_path):
    ann, images = ensure_sample_data()
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "feature_probe.py"),
                           "--config", "fassst_cpu_sample", "--weights", "imagenet", "--ann", ann,
                           "--images", images, "--val-ann", ann, "--val-images", images,
                           "--class", "person"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "blob features.13 (96 channels), 4 x 4 cells at input 256" in done.stdout
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in done.stdout.splitlines()
            if line.startswith("| features, lam") or line.startswith("| position")}
    # fitted and scored on the same photos: the features must separate person cells far better
    # than their positions do (the labels and the features line up cell by cell)
    assert float(rows["features, lam 0.001"][0]) > float(rows["position only"][0]) + 0.05
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "feature_probe.py"),
                          "--config", "fassst_cpu_sample", "--weights", "imagenet", "--ann", ann,
                          "--images", images, "--val-ann", ann, "--val-images", images,
                          "--class", "unicorn"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert "no class named 'unicorn'" in bad.stderr
