"""Validation during training (engine/eval_hook.py) on real sample photos, and the COCO split.

The run trains the demo config on two photos and validates on the same two: AP then moves
within a few dozen iterations, so the rows differ and the best is not simply the first or the
last. Every number the run wrote is checked against an evaluation made here, apart from it."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import caffe
import cv2
import numpy as np
import pytest

from fassst.build_paths import REPO_ROOT
from fassst.config import load_config
from fassst.data.coco_dataset import CocoDataset
from fassst.datasets.coco_split import split_coco, split_coco_file
from fassst.datasets.sample_data import ensure_sample_data
from fassst.engine.caffe_log import CaffeFormatLog
from fassst.engine.eval_hook import EvalHook
from fassst.engine.loss_curve import plot
from fassst.engine.precise_bn import recompute_bn_stats
from fassst.engine.trainer import check_val_set
from fassst.evaluation.coco_evaluator import evaluate_results, instances_to_results, load_coco_gt
from fassst.errors import InputError
from fassst.inference.predictor import Predictor

PHOTOS = ("labelme_voc_2011_000003.jpg", "labelme_voc_2011_000025.jpg")
ITERS, EVERY = 30, 10  # freeze_iam_bn_at switches at 20, an evaluation iteration too
NAME = "fassst_cpu_sample"
COLUMNS = ("segm_AP", "segm_AP50", "segm_AP75", "bbox_AP", "bbox_AP50", "bbox_AP75")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    ann, images = ensure_sample_data()
    with open(ann) as f:
        d = json.load(f)
    d["images"] = [im for im in d["images"] if im["file_name"] in PHOTOS]
    ids = {im["id"] for im in d["images"]}
    d["annotations"] = [a for a in d["annotations"] if a["image_id"] in ids]
    path = tmp_path_factory.mktemp("data") / "two.json"
    path.write_text(json.dumps(d))
    return str(path), images


def _train(out, data, *extra, wait=True):
    ann, images = data
    cmd = [sys.executable, os.path.join(REPO_ROOT, "scripts", "train.py"), "--config", NAME,
           "--ann", ann, "--images", images, "--val-ann", ann, "--val-images", images,
           "--eval-every", str(EVERY), "--iters", str(ITERS), "--seed", "0", "--workers", "1",
           "--out", str(out), *extra]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")  # one summation order: bitwise repeatable
    if wait:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("straight")
    res = _train(out, data)
    assert res.returncode == 0, res.stderr[-3000:]
    return out, json.loads(res.stdout.strip().splitlines()[-1])


def _metrics(out):
    with open(os.path.join(out, "metrics.csv")) as f:
        return [{k: (int(v) if k == "iter" else float(v)) for k, v in r.items()}
                for r in csv.DictReader(f)]


def _snapshot(out, it, suffix=""):
    return os.path.join(out, "snapshots", f"{NAME}_iter_{it}{suffix}.caffemodel")


def _blobs(model, prototxt):
    net = caffe.Net(str(prototxt), str(model), caffe.TEST)
    return {name: [b.data.copy() for b in blobs] for name, blobs in net.params.items()}


def _assert_same_blobs(a, b, scale_tol=0.0):
    """Equal blobs; scale_tol > 0 allows that fraction of each blob's largest |value|."""
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name]):
            atol = scale_tol * float(np.abs(y).max()) if y.size else 0.0
            np.testing.assert_allclose(x, y, rtol=0, atol=atol, err_msg=name)


def _evaluate_here(cfg, weights, ann, images):
    """COCO metrics of `weights` on ann/images: the deploy predictor image by image, the results
    list, pycocotools (not the run's evaluation code path)."""
    predictor = Predictor(cfg, weights)
    dataset = CocoDataset(ann, images)
    results = []
    for i in range(len(dataset)):
        sample = dataset.load(i)
        results += instances_to_results(sample.image_id, predictor(sample.image),
                                        dataset.category_ids, sample.image.shape[:2])
    m = evaluate_results(load_coco_gt(ann), results)
    return {c: round(m[c.split("_")[0]][c.split("_")[1]], 4) for c in COLUMNS}


def test_rows_are_the_evaluation_of_each_snapshot(run, data):
    """A row every EVERY iterations and one at the end, each the AP of that iteration's snapshot
    through precise BN (the weights a user would deploy), as evaluated here."""
    out, result = run
    rows = _metrics(out)
    assert [r["iter"] for r in rows] == list(range(EVERY, ITERS + 1, EVERY))
    cfg = load_config(NAME, num_classes=10)
    freeze_at = int(ITERS * cfg.solver.freeze_iam_bn_at)
    proto = out / "train.prototxt"
    assert result["final_weights"] == _snapshot(out, ITERS, "_precise_bn")
    for r in rows:
        scored = _snapshot(out, r["iter"], "_precise_bn")
        if r["iter"] in (EVERY, 3 * EVERY):  # one of each stage: its precise BN, redone here
            mine = str(out / f"mine_{r['iter']}.caffemodel")
            recompute_bn_stats(cfg, _snapshot(out, r["iter"]), *data, mine, seed=0, quiet=True,
                               iam_bn_frozen=r["iter"] > freeze_at)
            # Recomputed in this process, the tail's BatchNorm sums can differ in their last bits
            # (up to 7e-7 on sums of about 17, seen at 685df65 too); other snapshots' statistics,
            # or none, differ by orders of magnitude more.
            _assert_same_blobs(_blobs(mine, proto), _blobs(scored, proto), scale_tol=1e-6)
        assert {c: r[c] for c in COLUMNS} == _evaluate_here(cfg, scored, *data), r["iter"]
    assert len({r["segm_AP"] for r in rows}) > 1  # the rows measure different weights


def test_best_is_the_best_rows_weights(run, data, tmp_path):
    """best.json names the row of the highest mask AP (the earliest on a tie); best.caffemodel
    holds that row's weights, and scripts/infer.py + scripts/eval.py score it the same."""
    out, result = run
    rows = _metrics(out)
    top = max(r["segm_AP"] for r in rows)
    best_iter = next(r["iter"] for r in rows if r["segm_AP"] == top)
    best = json.loads((out / "snapshots" / "best.json").read_text())
    assert best["iter"] == best_iter and best["segm_AP"] == top
    model = out / "snapshots" / "best.caffemodel"
    assert result["best_weights"] == str(model)
    _assert_same_blobs(_blobs(model, out / "train.prototxt"),
                       _blobs(_snapshot(out, best_iter, "_precise_bn"), out / "train.prototxt"))

    ann, images = data
    folder = tmp_path / "val_images"
    folder.mkdir()
    for name in PHOTOS:
        os.symlink(os.path.join(images, name), folder / name)
    script = [sys.executable, os.path.join(REPO_ROOT, "scripts")]
    res = subprocess.run([script[0], os.path.join(script[1], "infer.py"), "--config", NAME,
                          "--weights", str(model), "--input", str(folder), "--ann", ann,
                          "--images", images, "--out", str(tmp_path / "infer")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    res = subprocess.run([script[0], os.path.join(script[1], "eval.py"), "--ann", ann, "--results",
                          str(tmp_path / "infer" / "results.json"), "--out", str(tmp_path / "eval")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {c: round(m[c.split("_")[0]][c.split("_")[1]], 4) for c in COLUMNS} == \
        {c: best[c] for c in COLUMNS}


# parse_log.py's own expressions (Caffe tools/extra/parse_log.py; that file is Python 2).
ITERATION = re.compile(r'Iteration (\d+)')
TEST_OUTPUT = re.compile(r'Test net output #(\d+): (\S+) = ([\.\deE+-]+)')


def test_log_has_the_rows_as_caffe_test_outputs(run, parse_caffe_log):
    out, _ = run
    tests, it = {}, None
    for line in (out / "train.log").read_text().splitlines():
        m = ITERATION.search(line)
        it = int(m.group(1)) if m else it
        m = TEST_OUTPUT.search(line)
        if m:
            tests.setdefault(it, {})[m.group(2)] = float(m.group(3))
    assert tests == {r["iter"]: {c: r[c] for c in COLUMNS} for r in _metrics(out)}

    _, table = parse_caffe_log((out / "train.log").read_text())
    # parse_log.sh: #Iters Seconds TestAccuracy TestLoss = outputs #0 and #1
    assert [(int(r[0]), float(r[2]), float(r[3])) for r in table] == \
        [(r["iter"], r["segm_AP"], r["segm_AP50"]) for r in _metrics(out)]


def test_loss_curve_has_an_ap_panel(run, tmp_path):
    out, _ = run
    with_ap = cv2.imread(str(out / "loss_curve.png"))
    plot(str(out / "losses.csv"), str(tmp_path / "loss_only.png"), "losses")
    alone = cv2.imread(str(tmp_path / "loss_only.png"))
    assert with_ap.shape[1] == alone.shape[1] and with_ap.shape[0] > 1.5 * alone.shape[0]


def test_resume_after_sigterm_matches_uninterrupted(run, data, tmp_path):
    straight, _ = run
    proc = _train(tmp_path, data, wait=False)
    deadline = time.time() + 240
    while (not (tmp_path / "metrics.csv").is_file() or len(_metrics(tmp_path)) < 1) \
            and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    stopped = max(int(f.split("_iter_")[1].split(".")[0])
                  for f in os.listdir(tmp_path / "snapshots") if f.endswith(".solverstate"))
    assert EVERY <= stopped < ITERS
    assert all(r["iter"] <= stopped for r in _metrics(tmp_path))
    res = _train(tmp_path, data, "--resume", "--eval-every", "5")  # another experiment: refused
    assert res.returncode != 0 and "run.eval_every" in res.stderr, res.stderr[-2000:]
    res = _train(tmp_path, data, "--resume")
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "metrics.csv").read_text() == (straight / "metrics.csv").read_text()
    assert (json.loads((tmp_path / "snapshots" / "best.json").read_text())
            == json.loads((straight / "snapshots" / "best.json").read_text()))
    proto = straight / "train.prototxt"
    _assert_same_blobs(_blobs(tmp_path / "snapshots" / "best.caffemodel", proto),
                       _blobs(straight / "snapshots" / "best.caffemodel", proto))


def test_resume_drops_later_rows_and_rebuilds_best(run, data, tmp_path):
    """A run restored at iteration R keeps the rows up to R; best.* return to the best of those
    (here best.json named a later row, which the resumed run has yet to reach)."""
    straight, _ = run
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    rows = _metrics(straight)
    best = json.loads((out / "snapshots" / "best.json").read_text())
    assert best["iter"] > EVERY, "the best is the first row: no earlier row to return to"
    restored = best["iter"] - EVERY  # a snapshot with a row, before the best one
    cfg = load_config(NAME, num_classes=10)
    t = SimpleNamespace(out_dir=str(out), cfg=cfg, start_iter=restored, max_iter=ITERS, status={},
                        best=None)
    hook = EvalHook(*data, EVERY, log=None)
    hook.before_train(t)
    kept = [r for r in rows if r["iter"] <= restored]
    assert _metrics(out) == kept
    top = max(kept, key=lambda r: (r["segm_AP"], -r["iter"]))
    assert json.loads((out / "snapshots" / "best.json").read_text())["iter"] == top["iter"]
    assert t.best["iter"] == top["iter"] and t.status["val"].endswith(f"@{top['iter']}")
    _assert_same_blobs(_blobs(out / "snapshots" / "best.caffemodel", out / "train.prototxt"),
                       _blobs(_snapshot(out, top["iter"], "_precise_bn"), out / "train.prototxt"))


def test_val_set_must_fit_the_training_set(data, tmp_path):
    ann, images = data
    d = json.loads(open(ann).read())
    d["categories"][0]["name"] = "pedestrian"
    other = tmp_path / "renamed.json"
    other.write_text(json.dumps(d))
    with pytest.raises(InputError, match="renamed.json.*categories"):
        check_val_set(ann, images, str(other), images, 10)
    d = json.loads(open(ann).read())
    d["annotations"] = []
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps(d))
    with pytest.raises(InputError, match="empty.json.*no annotations"):
        check_val_set(ann, images, str(empty), images, 10)


def test_split_is_disjoint_complete_and_seeded(tmp_path):
    ann, _ = ensure_sample_data()
    d = json.loads(open(ann).read())
    n = len(d["images"])
    train, val = split_coco(d, n_val=4, seed=0)
    t_ids, v_ids = ({im["id"] for im in p["images"]} for p in (train, val))
    assert len(v_ids) == 4 and not t_ids & v_ids and t_ids | v_ids == {im["id"] for im in d["images"]}
    for part, ids in ((train, t_ids), (val, v_ids)):
        assert part["categories"] == d["categories"]
        assert sorted(a["id"] for a in part["annotations"]) == \
            sorted(a["id"] for a in d["annotations"] if a["image_id"] in ids)
    assert split_coco(d, n_val=4, seed=0) == (train, val)
    # the file's order does not matter, only the seed and the image ids
    shuffled = dict(d, images=d["images"][::-1])
    assert {im["id"] for im in split_coco(shuffled, n_val=4, seed=0)[1]["images"]} == v_ids
    others = {frozenset(im["id"] for im in split_coco(d, n_val=4, seed=s)[1]["images"])
              for s in range(1, 6)}
    assert others - {frozenset(v_ids)}
    assert len(split_coco(d, val_frac=0.25, seed=0)[1]["images"]) == round(0.25 * n)
    for bad in (dict(n_val=0), dict(n_val=n), dict(val_frac=1.0)):
        with pytest.raises(InputError):
            split_coco(d, seed=0, **bad)

    res = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "split_coco.py"), "--val",
                          "4", "--seed", "0", "--out-dir", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "val.json").read_text()) == val
    assert split_coco_file(ann, str(tmp_path / "again"), n_val=4, seed=0)[1].endswith("val.json")
    res = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "split_coco.py"), "--val",
                          str(n), "--out-dir", str(tmp_path / "bad")], capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.startswith("error: ") and ann in res.stderr


def test_resume_at_an_evaluation_iteration_scores_it(run, data, tmp_path):
    """A run stopped right at an evaluation iteration (the signal's stop skips it) scores that
    snapshot when it resumes, with the value an uninterrupted run wrote."""
    straight, _ = run
    out = tmp_path / "run"
    shutil.copytree(straight, out)
    rows = _metrics(straight)
    at = 2 * EVERY
    (out / "metrics.csv").write_text("".join(
        line for line in (straight / "metrics.csv").read_text().splitlines(True)
        if not line[0].isdigit() or int(line.split(",")[0]) < at))
    cfg = load_config(NAME, num_classes=10)
    t = SimpleNamespace(out_dir=str(out), cfg=cfg, start_iter=at, max_iter=ITERS, status={},
                        best=None, ann=data[0], images=data[1], seed=0, skip_bad_images=False,
                        freeze_at=int(ITERS * cfg.solver.freeze_iam_bn_at))
    hook = EvalHook(*data, EVERY, log=CaffeFormatLog(str(tmp_path / "train.log")))
    hook.before_train(t)
    assert _metrics(out) == [r for r in rows if r["iter"] <= at]
    assert f"Iteration {at}, Testing net (#0)" in (tmp_path / "train.log").read_text()
