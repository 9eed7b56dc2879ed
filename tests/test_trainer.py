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

from fassst.build_paths import build_dir
from fassst.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = [sys.executable, os.path.join(ROOT, "scripts", "train.py"), "--config", "fassst_cpu_sample",
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


def test_log_reads_with_caffe_parse_log(straight_run, tmp_path):
    log = tmp_path / "train.log"
    log.write_text((straight_run / "train.log").read_text())
    tool = os.path.join(build_dir(), "caffe", "tools", "extra", "parse_log.sh")
    res = subprocess.run(["bash", tool, "train.log"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    rows = [line.split() for line in (tmp_path / "train.log.train").read_text().splitlines()[1:]]
    assert rows and rows[0][0] == "0"
    assert float(rows[0][2]) > 0  # TrainingLoss
    assert float(rows[0][3]) == pytest.approx(load_config("fassst_cpu_sample").solver.base_lr)


def test_run_folder_has_provenance_and_curve(straight_run):
    for name in ("config.json", "git_rev.txt", "train.prototxt", "solver.prototxt", "losses.csv",
                 "loss_curve.png", "caffe.log"):
        assert os.path.getsize(straight_run / name) > 0, name
    png = (straight_run / "loss_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
