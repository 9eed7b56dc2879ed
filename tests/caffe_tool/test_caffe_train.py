"""Caffe's own tool trains the generated solvers: scripts/caffe embeds the project's Python (its
standard library before any site-packages, this checkout's fassst and pycaffe), the checked-in
solver stops naming the data setting when none is given (and a bad training image is one error
line), and `caffe train` from scripts/init_weights.py's caffemodel computes what scripts/train.py
computes, iteration by iteration, into a snapshot that `scripts/train.py --resume` continues to
the very weights of an uninterrupted scripts/train.py run."""
import csv
import json
import math
import os
import re
import shlex
import subprocess
import sys
import sysconfig

import numpy as np
import pytest

from fassst.build_paths import REPO_ROOT, caffe_tool, pycaffe_dir
from fassst.caffe_tool import env as caffe_env
from fassst.datasets.sample_data import ensure_sample_data
from fassst.export.caffemodel import read_caffemodel

CAFFE = os.path.join(REPO_ROOT, "scripts", "caffe")
CONFIG = "fassst_cpu_sample"
CAFFE_ITERS, ITERS = 3, 6  # caffe train runs 0..2, scripts/train.py --resume runs 3..5

PROBE_LAYER = '''
import json, sys, sysconfig, typing
import numpy, caffe, fassst
class Probe(caffe.Layer):
    def setup(self, bottom, top):
        with open(self.param_str, "w") as f:
            json.dump(dict(version=sys.version, base_prefix=sys.base_prefix, typing=typing.__file__,
                           stdlib=sysconfig.get_paths()["stdlib"], fassst=fassst.__file__,
                           caffe=caffe.__file__, numpy=numpy.__version__), f)
    def reshape(self, bottom, top):
        top[0].reshape(1)
    def forward(self, bottom, top):
        pass
    def backward(self, top, propagate_down, bottom):
        pass
'''


def _probe(tmp_path, env, tool):
    (tmp_path / "fassst_probe_layer.py").write_text(PROBE_LAYER)
    out = tmp_path / "probe.json"
    (tmp_path / "probe.prototxt").write_text(
        'layer { name: "p" type: "Python" top: "p" python_param { module: "fassst_probe_layer" '
        f'layer: "Probe" param_str: "{out}" }} }}\n')
    res = subprocess.run([tool, "time", "-model", "probe.prototxt", "-iterations", "1"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(out.read_text())


def _stdlib_path(path):
    return os.path.realpath(os.path.dirname(path)) == os.path.realpath(sysconfig.get_paths()["stdlib"])


def test_embedded_python_is_the_projects(tmp_path):
    """Through scripts/caffe the tool runs this very interpreter; `typing` is the standard
    library's although site-packages holds the obsolete backport (cityscapesscripts)."""
    got = _probe(tmp_path, dict(os.environ, PYTHONPATH=str(tmp_path)), CAFFE)
    if caffe_env.own_libpython_dir():
        assert got["version"] == sys.version
    assert os.path.realpath(got["base_prefix"]) == os.path.realpath(sys.base_prefix)
    assert _stdlib_path(got["typing"]), got["typing"]
    assert got["fassst"] == os.path.join(REPO_ROOT, "python", "fassst", "__init__.py")
    assert os.path.dirname(os.path.dirname(got["caffe"])) == pycaffe_dir()
    assert got["numpy"] == np.__version__


def test_embedded_python_without_own_libpython(tmp_path, monkeypatch):
    """The fallback for a Python built without a shared libpython: the tool keeps the libpython
    it links (here Debian's), reads this installation's standard library and packages, and the
    standard library still comes first."""
    monkeypatch.setattr(caffe_env, "own_libpython_dir", lambda: None)
    got = _probe(tmp_path, caffe_env.tool_env(dict(os.environ, PYTHONPATH=str(tmp_path))),
                 caffe_tool())
    assert os.path.realpath(got["base_prefix"]) == os.path.realpath(sys.base_prefix)
    assert _stdlib_path(got["typing"]), got["typing"]
    assert got["fassst"] == os.path.join(REPO_ROOT, "python", "fassst", "__init__.py")
    assert got["numpy"] == np.__version__


def _repo_like(tmp_path, **solver_edits):
    """tmp_path laid out like the repository root for the checked-in solver's relative paths
    (prototxt/ linked, the snapshot folder made), the solver copied with `solver_edits` (field ->
    new value text) applied; returns the solver's path."""
    os.symlink(os.path.join(REPO_ROOT, "prototxt"), tmp_path / "prototxt")
    with open(os.path.join(REPO_ROOT, "solvers", f"{CONFIG}.prototxt")) as f:
        text = f.read()
    prefix = re.search(r'^snapshot_prefix: "(.*)"$', text, re.M).group(1)
    assert prefix == f"results/caffe_train/{CONFIG}/snapshots/{CONFIG}"  # a run folder's layout
    os.makedirs(tmp_path / os.path.dirname(prefix))
    for field, value in solver_edits.items():
        text, n = re.subn(rf"^{field}: .*$", f"{field}: {value}", text, flags=re.M)
        assert n == 1, field
    (tmp_path / "solvers").mkdir()
    path = tmp_path / "solvers" / f"{CONFIG}.prototxt"
    path.write_text(text)
    return str(path)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASSST_TRAIN_")}
    # one summation order (bitwise repeatable); Caffe's INFO log, which the scripts quiet
    env.update(OPENBLAS_NUM_THREADS="1", GLOG_minloglevel="0", **extra)
    return env


def test_checked_in_solver_refuses_without_data(tmp_path):
    """Without its data the checked-in solver stops; it once "trained" on all-zero Input blobs."""
    solver = _repo_like(tmp_path)
    res = subprocess.run([CAFFE, "train", "-solver", solver], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, res.stderr[-3000:]
    assert "FASSST_TRAIN_ANN and FASSST_TRAIN_IMAGES are not set" in errors[0]
    assert "Traceback" not in res.stderr and "Iteration 0" not in res.stderr


def test_bad_training_image_under_the_tool(tmp_path):
    """The data layer's own errors end `caffe train` as they end the scripts: one line naming
    the file (here an image that a prefetch worker cannot read), no traceback."""
    ann, images = ensure_sample_data()
    with open(ann) as f:
        doc = json.load(f)
    doc["images"] = doc["images"][:3]
    doc["images"][2] = dict(doc["images"][2], file_name="missing.jpg")
    kept = {im["id"] for im in doc["images"]}
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] in kept]
    (tmp_path / "three.json").write_text(json.dumps(doc))
    solver = _repo_like(tmp_path)
    res = subprocess.run([CAFFE, "train", "-solver", solver], cwd=tmp_path, timeout=120,
                         env=_env(FASSST_TRAIN_ANN="three.json", FASSST_TRAIN_IMAGES=images),
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr[-3000:]
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {images}/missing.jpg: no such image file"], res.stderr[-3000:]
    assert "Traceback" not in res.stderr


def _caffe_outputs(log):
    """{iteration: {output: weighted value}} from `caffe train`'s log."""
    out, it = {}, None
    for line in log.splitlines():
        m = re.search(r"\] Iteration (\d+), loss = ", line)
        if m:
            it = int(m.group(1))
        m = re.search(r"Train net output #\d+: (\w+) = \S+ \(\* \S+ = (\S+) loss\)", line)
        if m and it is not None:
            out.setdefault(it, {})[m.group(1)] = float(m.group(2))
    return out


def _rows(out):
    with open(os.path.join(out, "losses.csv")) as f:
        return {int(r["iter"]): r for r in csv.DictReader(f)}


def _train_py(cwd, out, *extra):
    cmd = [sys.executable, os.path.join(REPO_ROOT, "scripts", "train.py"), "--config", CONFIG,
           "--out", out, "--iters", str(ITERS), "--workers", "1", *extra]
    res = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]


def _sample_exports():
    """What README's `eval "$(scripts/make_sample_data.py --export)"` exports."""
    line = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "make_sample_data.py"),
                           "--export"], capture_output=True, text=True, timeout=300,
                          check=True).stdout.strip()
    words = shlex.split(line)
    assert words[0] == "export", line
    return dict(word.split("=", 1) for word in words[1:])


def test_caffe_train_then_train_py_resume(tmp_path):
    exports = _sample_exports()
    assert (exports["FASSST_TRAIN_ANN"], exports["FASSST_TRAIN_IMAGES"]) == ensure_sample_data()
    solver = _repo_like(tmp_path, max_iter=CAFFE_ITERS, display=1, snapshot=CAFFE_ITERS)
    weights = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "init_weights.py"),
                              "--config", CONFIG], env=_env(), capture_output=True, text=True,
                             timeout=300, check=True).stdout.strip()
    res = subprocess.run([CAFFE, "train", "-solver", solver, "-weights", weights], cwd=tmp_path,
                         env=_env(**exports),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    caffe_losses = _caffe_outputs(res.stderr)
    assert sorted(caffe_losses) == list(range(CAFFE_ITERS)), res.stderr[-3000:]
    for name in ("loss_loc", "loss_cls", "loss_mask"):  # real data: not Input blobs' zeros
        value = caffe_losses[0][name]
        assert math.isfinite(value) and value > 0, (name, value)
    run = f"results/caffe_train/{CONFIG}"
    for ext in ("caffemodel", "solverstate"):
        assert os.path.isfile(tmp_path / run / "snapshots" / f"{CONFIG}_iter_{CAFFE_ITERS}.{ext}")

    # scripts/train.py from the start, and continuing caffe train's run folder (from the same
    # working directory: the solverstate names its caffemodel by the solver's relative path)
    ref = str(tmp_path / "ref")
    _train_py(tmp_path, ref)
    _train_py(tmp_path, run, "--resume")
    ref_rows, resumed = _rows(ref), _rows(tmp_path / run)
    for it in range(CAFFE_ITERS):  # losses.csv row i + 1 holds iteration i's forward
        for name, value in caffe_losses[it].items():
            assert value == pytest.approx(float(ref_rows[it + 1][name]), rel=1e-5), (it, name)
    assert sorted(resumed) == list(range(CAFFE_ITERS + 1, ITERS + 1))
    for it in resumed:
        assert resumed[it] == ref_rows[it]
    name = f"{CONFIG}_iter_{ITERS}_precise_bn.caffemodel"
    a = read_caffemodel(os.path.join(ref, "snapshots", name))
    b = read_caffemodel(tmp_path / run / "snapshots" / name)
    assert a.keys() == b.keys()
    for layer in a:
        for x, y in zip(a[layer], b[layer]):
            np.testing.assert_array_equal(x, y, err_msg=layer)


def test_tools_name_bad_input(tmp_path):
    """No build, no weights file: one `error:` line each, exit status 1."""
    missing = tmp_path / "nope.caffemodel"
    for cmd, env, fragment in (
            ([CAFFE, "train"], dict(os.environ, FASSST_BUILD_DIR=str(tmp_path)),
             f"{tmp_path}/caffe-build/tools/caffe: the caffe tool is not built"),
            ([sys.executable, os.path.join(REPO_ROOT, "scripts", "init_weights.py"), "--config", CONFIG,
              "--weights", str(missing)], None, f"{missing}: no such caffemodel")):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and errors[0].startswith(f"error: {fragment}"), res.stderr


def test_wrapper_makes_the_snapshot_folder(tmp_path, monkeypatch):
    from fassst.caffe_tool.env import make_snapshot_folder
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.prototxt").write_text('net: "n"\nsnapshot_prefix: "runs/a/snapshots/x"\n')
    assert make_snapshot_folder(["train", "-solver", "s.prototxt"]) == "runs/a/snapshots"
    assert (tmp_path / "runs" / "a" / "snapshots").is_dir()
    assert make_snapshot_folder(["train", "--solver=s.prototxt"]) == "runs/a/snapshots"
    assert make_snapshot_folder(["time", "-model", "s.prototxt"]) is None
    assert make_snapshot_folder(["train", "-solver", "missing.prototxt"]) is None
