"""Training hooks one by one on a stand-in trainer, and the collapse watch on real runs: it
names a blob that stopped depending on the image, and stays quiet on a healthy net."""
import csv
import math
import os
import signal
import types

import numpy as np
import pytest

from fassst.config import load_config
from fassst.diagnostics.spread import COLLAPSED, SpreadProbe, collapsed, spread_of
from fassst.engine import hooks as H


class FakeLog:
    def __init__(self):
        self.lines = []

    def solving(self, *a):
        self.lines.append(("solving",) + a)

    def iteration(self, it, loss, lr, outputs):
        self.lines.append(("iteration", it, loss, lr))

    def warning(self, message):
        self.lines.append(("warning", message))


def fake_trainer(tmp_path, it=1, losses=None, start_iter=0):
    cfg = load_config("fassst_cpu_sample")
    t = types.SimpleNamespace(cfg=cfg, out_dir=str(tmp_path), iter=it, start_iter=start_iter,
                              losses=losses or {"loss_mask": 1.0, "loss_cls": 0.5}, lr=0.01,
                              step_seconds=0.5, status={}, written=[],
                              loss_weights={"loss_mask": 5.75, "loss_cls": 1.25})
    t.write = t.written.append
    return t


def test_spread_matches_its_definition():
    rng = np.random.default_rng(0)
    rows = rng.normal(2.0, 0.5, (10, 300))
    level, spread, ratio, k = spread_of(rows)
    assert k == 10
    m = rows.mean()
    assert level == pytest.approx(np.mean([np.mean(np.abs(rows[:, u] - m)) for u in range(300)]))
    assert spread == pytest.approx(np.mean([np.std(rows[:, u]) for u in range(300)]))
    assert ratio == pytest.approx(spread / level)
    assert 0.9 < ratio < 1.35  # all variation is across images: std / mean abs deviation ~ 1.25
    assert spread_of(np.zeros((4, 7)))[2] == 0.0  # a dead blob reads as collapsed


def test_probe_keeps_a_window_and_a_fixed_unit_subset():
    probe = SpreadProbe(["a", "b"], window=4, max_units=50)
    rng = np.random.default_rng(1)
    for _ in range(3):
        probe.add("a", rng.normal(size=(2, 8, 10, 10)))   # 800 units: 50 kept
        probe.add("b", np.ones((2, 3)) * 5)               # the same for every image
    rep = probe.report()
    assert rep["a"][3] == 4 and rep["b"][3] == 4           # window of 4 images
    assert rep["a"][2] > 0.5 and rep["b"][2] == 0.0
    assert spread_of(np.ones((3, 5)) + np.arange(5))[2] == 0  # varies by unit, not by image
    assert collapsed(rep) == ["b"]
    other = SpreadProbe(["a"], max_units=50)
    other.add("a", np.zeros((1, 800)))
    np.testing.assert_array_equal(probe._units["a"], other._units["a"])


def test_divergence_stop_names_the_loss_and_what_to_change(tmp_path):
    t = fake_trainer(tmp_path, it=7, losses={"loss_mask": 1.0, "loss_cls": math.nan})
    with pytest.raises(H.TrainingDiverged, match="loss_cls not finite.*base_lr"):
        H.DivergenceStop().after_step(t)
    H.DivergenceStop().after_step(fake_trainer(tmp_path))  # finite: nothing happens


def test_loss_writer_truncates_rows_past_a_resumed_iteration(tmp_path):
    log = FakeLog()
    w = H.LossWriter(log, display=2)
    t = fake_trainer(tmp_path)
    w.before_train(t)
    for it in range(1, 6):
        t.iter = it
        w.after_step(t)
    w.after_train(t)
    rows = list(csv.reader(open(tmp_path / "losses.csv")))
    assert rows[0] == ["iter", "loss_mask", "loss_cls", "lr"] and len(rows) == 6
    assert [x[1] for x in log.lines if x[0] == "iteration"] == [0, 2, 4]  # Caffe's 0-based display
    t2 = fake_trainer(tmp_path, start_iter=3)
    w2 = H.LossWriter(FakeLog(), display=2)
    w2.before_train(t2)
    w2.after_train(t2)
    rows = list(csv.reader(open(tmp_path / "losses.csv")))
    assert [r[0] for r in rows[1:]] == ["1", "2", "3"]


def test_stop_on_signal_ends_after_the_step(tmp_path):
    hook, t = H.StopOnSignal(), fake_trainer(tmp_path)
    t.stopped_by = None
    old = signal.getsignal(signal.SIGTERM)
    hook.before_train(t)
    os.kill(os.getpid(), signal.SIGTERM)
    hook.after_step(t)
    hook.after_train(t)
    assert t.stopped_by == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is old


class FakeNet:
    def __init__(self, blobs):
        self.blobs = {k: types.SimpleNamespace(data=v, num=len(v)) for k, v in blobs.items()}


def test_collapse_watch_warns_once_per_blob_naming_it(tmp_path):
    log = FakeLog()
    watch = H.CollapseWatch(["features.6", "iam/cls"], log, every=2, start=2, window=8)
    t = fake_trainer(tmp_path)
    watch.before_train(t)
    rng = np.random.default_rng(0)
    for it in range(1, 9):
        t.iter = it
        t.solver = types.SimpleNamespace(net=FakeNet({
            "data": np.zeros((2, 3, 4, 4)),                     # 2 images per step
            "features.6": rng.normal(1, 1, (2, 4, 5, 5)),      # depends on the image
            "iam/cls": np.full((2, 16, 10), -4.6)}))            # the same for every image
        watch.after_step(t)
    warnings = [x[1] for x in log.lines if x[0] == "warning"]
    assert len(warnings) == 1 and "iam/cls" in warnings[0] and "features.6" not in warnings[0]
    assert "base_lr" in warnings[0]
    assert t.status["collapse"] == "COLLAPSED: iam/cls" and any("iam/cls" in w for w in t.written)
    rows = list(csv.reader(open(tmp_path / "spread.csv")))
    assert rows[0] == ["iter", "features.6", "iam/cls"] and len(rows) == 5
    assert float(rows[-1][1]) > 0.5 and float(rows[-1][2]) < COLLAPSED


def _watched_run(tmp_path, constant_iam, stop=False):
    """12 iterations at learning rate 0 from the ImageNet backbone (the net stays as built), the
    collapse watch checking every 4 from iteration 8; constant_iam zeroes the IAM's output conv
    weights (class logits = the prior's bias for every image): a collapsed head, made to order.
    Returns (warnings, collapse status, the trainer)."""
    from fassst.datasets.sample_data import ensure_sample_data
    from fassst.diagnostics.spread import watched_blobs
    from fassst.engine.trainer import Trainer
    from fassst.weights.convert_mobilenet_v2 import imagenet_weights
    ann, images = ensure_sample_data()
    cfg = load_config("fassst_cpu_sample", num_classes=10, cls_prior=0.01, solver=dict(
        batch_size=2, base_lr=0.0, lr_policy="fixed", train_images=14, solver_mode="cpu"))
    os.makedirs(tmp_path / "snapshots")
    t = Trainer(cfg, str(tmp_path), ann, images, seed=0, max_iter=12, workers=0, augment=False,
                quiet=True)
    t.start(imagenet_weights(cfg), None)
    if constant_iam:
        t.solver.net.params["iam/out"][0].data[...] = 0
    log = FakeLog()
    t.train([H.CollapseWatch(watched_blobs(cfg, "train"), log, every=4, start=8, window=16,
                             stop=stop), H.StageStats(every=4)])
    return [x[1] for x in log.lines if x[0] == "warning"], t.status.get("collapse"), t


def test_collapse_watch_on_a_constant_iam_and_on_a_healthy_net(tmp_path):
    warnings, status, t = _watched_run(tmp_path / "constant", constant_iam=True)
    assert len(warnings) == 1 and "iteration 8" in warnings[0], warnings
    named = warnings[0].split(" no longer")[0]
    assert "iam/cls" in named and "iam/loc" in named and "features." not in named, warnings
    assert status.startswith("COLLAPSED") and t.iter == 12 and t.stopped_by is None
    warnings, status, _ = _watched_run(tmp_path / "healthy", constant_iam=False)
    assert warnings == [] and status == "", warnings


def test_stop_on_collapse_ends_the_run_at_the_check_that_finds_it(tmp_path):
    warnings, _, t = _watched_run(tmp_path / "constant", constant_iam=True, stop=True)
    assert len(warnings) == 1 and t.iter == 8 and t.stopped_by == "collapse"
    _, _, t = _watched_run(tmp_path / "healthy", constant_iam=False, stop=True)
    assert t.iter == 12 and t.stopped_by is None


def test_stage_stats_rows_on_a_real_run(tmp_path):
    """stages.csv: a row per part at iterations 1, 4, 8, 12; at rate 0 no step moves anything,
    the ImageNet backbone's weights are there, and gradient reaches the pyramid's input."""
    _watched_run(tmp_path, constant_iam=False)
    rows = list(csv.DictReader(open(tmp_path / "stages.csv")))
    assert sorted({int(r["iter"]) for r in rows}) == [1, 4, 8, 12]
    last = {r["part"]: r for r in rows if r["iter"] == "12"}
    assert [f"features.{k}" for k in range(19)] == [p for p in last if p.startswith("features.")]
    assert {"p1", "p2", "p3", "iam"} <= set(last)
    for part in ("features.0", "features.18", "p3", "iam"):
        assert float(last[part]["weights"]) > 1 and float(last[part]["update"]) == 0.0, part
    assert float(last["features.18"]["grad"]) > 0
    at0, at6 = float(last["features.18"]["at0"]), float(last["features.18"]["at6"])
    assert 0 < at0 < 1 and 0 <= at6 < 1 and at0 + at6 < 1
    relu6 = list(csv.DictReader(open(tmp_path / "relu6.csv")))
    assert {r["blob"] for r in relu6 if r["part"] == "features.17"} == {
        "features.17.conv.0.0", "features.17.conv.1.0"}
