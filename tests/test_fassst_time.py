"""fassst_time (layers/tools/fassst_time.cpp), the whole-net timer of the GPU check: it runs
the passes asked for and refuses bad input in one line."""
import os
import subprocess

import pytest

from fassst.bench import caffe_time
from fassst.build_paths import build_dir

TOOL = os.path.join(build_dir(), "bin", "fassst_time")

NET = """name: "tiny"
layer { name: "data" type: "DummyData" top: "data"
        dummy_data_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } data_filler { type: "gaussian" } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" } } }
"""


def _run(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, timeout=120)


def test_check_against_the_cpu_redraws_the_same_inputs(tmp_path):
    """-check_cpu on a CPU build compares the CPU with itself: both passes start from the same
    seed, so the DummyData input is drawn alike and every blob is equal (the device run relies
    on exactly that)."""
    net = tmp_path / "tiny.prototxt"
    net.write_text(NET)
    res = _run("-model", str(net), "-iterations", "1", "-check_cpu")
    assert res.returncode == 0, res.stderr
    check = caffe_time.cpu_check(res.stdout)
    assert check == dict(blobs=2, worst=0.0, blob="-", over=0, tolerance=1e-3)


def test_times_the_passes_asked_for(tmp_path):
    net = tmp_path / "tiny.prototxt"
    net.write_text(NET)
    res = _run("-model", str(net), "-iterations", "3", "-warmup", "0")
    assert res.returncode == 0, res.stderr
    assert f"fassst_time: {net}: forward over 3 passes: median " in res.stdout
    assert res.stdout.rstrip().endswith("(CPU)")
    assert caffe_time.whole_forward_ms(res.stdout) > 0


@pytest.mark.parametrize("args, message", [
    ([], "-model: required (a prototxt)"),
    (["-model", "/nonexistent/net.prototxt"], "/nonexistent/net.prototxt: cannot read the -model file"),
    (["-iterations", "0"], "-iterations: expected >= 1"),
    (["-gpu", "0"], "-gpu: this build has no GPU support (CPU_ONLY)"),
    (["-check_tolerance", "-1"], "-check_tolerance: expected >= 0"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    net = tmp_path / "tiny.prototxt"
    net.write_text(NET)
    if args[:1] != ["-model"] and args:
        args = ["-model", str(net), *args]
    res = _run(*args)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == f"error: fassst_time: {message}"
