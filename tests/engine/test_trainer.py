"""The training runner on real sample images: SIGTERM snapshots and stops, --resume continues to
the same weights as an uninterrupted run, and the log is readable by Caffe's own parse_log.sh."""
import csv
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import caffe

from fassst.build_paths import REPO_ROOT
from fassst.config import load_config

TRAIN = [sys.executable, os.path.join(REPO_ROOT, "scripts", "train.py"), "--config", "fassst_cpu_sample",
         "--seed", "3", "--workers", "1"]
ITERS = 8


def _train(out, *extra, wait=True):
    cmd = TRAIN + ["--out", str(out), "--iters", str(ITERS), *extra]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # one summation order: bitwise repeatable
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _rows(out):
    path = os.path.join(out, "losses.csv")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def _weights(out):
    snaps = os.path.join(out, "snapshots")
    model = os.path.join(snaps, f"fassst_cpu_sample_iter_{ITERS}.caffemodel")
    net = caffe.Net(os.path.join(out, "train.prototxt"), model, caffe.TEST)
    return {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    res = _train(out)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_sigterm_snapshots_and_resume_matches_uninterrupted(straight_run, tmp_path):
    proc = _train(tmp_path, wait=False)
    deadline = time.time() + 240
    while len(_rows(tmp_path)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    stopped = int(_rows(tmp_path)[-1]["iter"])
    assert 3 <= stopped < ITERS
    assert os.path.isfile(os.path.join(tmp_path, "snapshots",
                                       f"fassst_cpu_sample_iter_{stopped}.solverstate"))
    res = _train(tmp_path)  # without --resume: refuses, loses nothing
    assert res.returncode != 0 and "--resume" in res.stderr
    res = _train(tmp_path, "--resume", "--seed", "4")  # another experiment: refuses, names it
    assert res.returncode != 0 and "run.seed" in res.stderr
    res = _train(tmp_path, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert [int(r["iter"]) for r in _rows(tmp_path)] == list(range(1, ITERS + 1))
    a, b = _weights(straight_run), _weights(tmp_path)
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert [r["loss_mask"] for r in _rows(tmp_path)] == [r["loss_mask"] for r in _rows(straight_run)]


def test_log_reads_with_caffe_parse_log(straight_run, parse_caffe_log):
    rows, _ = parse_caffe_log((straight_run / "train.log").read_text())
    assert rows and rows[0][0] == "0"
    assert float(rows[0][2]) > 0  # TrainingLoss
    assert float(rows[0][3]) == pytest.approx(load_config("fassst_cpu_sample").solver.base_lr)


def test_run_folder_has_provenance_and_curve(straight_run):
    for name in ("config.json", "git_rev.txt", "train.prototxt", "solver.prototxt", "losses.csv",
                 "loss_curve.png", "caffe.log"):
        assert os.path.getsize(straight_run / name) > 0, name
    png = (straight_run / "loss_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


FREEZE_AT = int(ITERS * load_config("fassst_cpu_sample").solver.freeze_iam_bn_at)


def _bn_stats(model, prototxt):
    """{BatchNorm layer: (mean, variance)} as the layer uses them: Caffe stores sums and a count,
    and the solver scales all three alike each step (weight decay), leaving the ratios fixed."""
    net = caffe.Net(prototxt, model, caffe.TEST)
    return {name: [net.params[name][i].data / net.params[name][2].data[0] for i in (0, 1)]
            for name in net.params if name.endswith("/bn")}


def test_second_stage_keeps_the_iam_statistics(straight_run):
    """From freeze_iam_bn_at on, the IAM's BatchNorm holds the precise statistics of the switch
    iteration while the other head BatchNorms go on averaging their batches."""
    assert 0 < FREEZE_AT < ITERS
    snaps = straight_run / "snapshots"
    proto = str(straight_run / "train.prototxt")
    at_switch = _bn_stats(str(snaps / f"fassst_cpu_sample_iter_{FREEZE_AT}.caffemodel"), proto)
    fixed = _bn_stats(str(snaps / f"fassst_cpu_sample_iter_{FREEZE_AT}_precise_bn.caffemodel"), proto)
    end = _bn_stats(str(snaps / f"fassst_cpu_sample_iter_{ITERS}.caffemodel"), proto)
    final = _bn_stats(str(snaps / f"fassst_cpu_sample_iter_{ITERS}_precise_bn.caffemodel"), proto)
    iam = [n for n in end if n.startswith("iam/")]
    others = [n for n in end if n.startswith("tail/")]
    assert iam and others
    for name in iam:
        assert not np.array_equal(at_switch[name][0], fixed[name][0]), name  # precise BN ran
        for x, y, z in zip(fixed[name], end[name], final[name]):
            np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-6, err_msg=name)  # stage 2 kept them
            np.testing.assert_allclose(z, x, rtol=1e-5, atol=1e-6, err_msg=name)  # so did the last precise BN
    for name in others:  # still averaging batches: they moved by far more than rounding
        assert np.abs(end[name][0] - fixed[name][0]).max() > 1e-3 * np.abs(fixed[name][0]).max(), name
    frozen_net = (straight_run / "train_iam_bn_frozen.prototxt").read_text()
    assert "use_global_stats: true" in frozen_net.split('name: "iam/conv1/bn"')[1][:400]


def test_resume_at_the_switch_matches_uninterrupted(straight_run, tmp_path):
    """A run stopped right at the switch (its snapshot written, stage 2 not begun) re-enters
    stage 2 with the same fixed statistics."""
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(straight_run), str(run)], check=True)
    for path in (run / "snapshots").iterdir():
        if not path.name.startswith(f"fassst_cpu_sample_iter_{FREEZE_AT}.") or "precise" in path.name:
            path.unlink()
    res = _train(run, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _weights(straight_run), _weights(run)
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y, err_msg=name)


def test_divergence_stops_with_what_to_change(tmp_path):
    """A NaN loss ends the run at once with an error naming the loss and the setting to change,
    instead of training on NaN weights to the end of the schedule."""
    cfg = tmp_path / "hot.json"
    cfg.write_text(open(os.path.join(REPO_ROOT, "python", "fassst", "configs", "fassst_cpu_sample.json"))
                   .read().replace('"base_lr": 0.01', '"base_lr": 1e6'))
    res = subprocess.run(TRAIN[:2] + ["--config", str(cfg), "--out", str(tmp_path / "run"),
                                      "--iters", "20", "--workers", "0"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0
    assert "not finite" in res.stderr and "base_lr" in res.stderr, res.stderr[-2000:]
    rows = _rows(tmp_path / "run")
    assert len(rows) < 20
    assert all(np.isfinite(float(v)) for r in rows for k, v in r.items() if k.startswith("loss"))
