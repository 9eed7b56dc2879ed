"""The stock `caffe` command-line tool knows the FASSST layers (same library as pycaffe)."""
import os
import re
import subprocess

from fassst.build_paths import caffe_tool

RFF_NET = """
name: "rff_time"
layer {{ name: "r1" type: "Input" top: "r1" input_param {{ shape {{ dim: 4 dim: 16 dim: {a} dim: {a} }} }} }}
layer {{ name: "r2" type: "Input" top: "r2" input_param {{ shape {{ dim: 4 dim: 16 dim: 14 dim: 14 }} }} }}
layer {{ name: "r3" type: "Input" top: "r3" input_param {{ shape {{ dim: 4 dim: 16 dim: 7 dim: 7 }} }} }}
layer {{ name: "rff" type: "ROIFeatureFusion" bottom: "r1" bottom: "r2" bottom: "r3" top: "rff"
        roi_feature_fusion_param {{ relu: true }} }}
"""


def run_caffe_time(tmp_path, r1_size):
    model = tmp_path / "rff.prototxt"
    model.write_text(RFF_NET.format(a=r1_size))
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    return subprocess.run([caffe_tool(), "time", "-model", str(model), "-iterations", "3"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_caffe_time_runs_rff(tmp_path):
    res = run_caffe_time(tmp_path, 28)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log
    assert re.search(r"\brff\s+forward: [0-9.]+ ms", log), log
    assert re.search(r"\brff\s+backward: [0-9.]+ ms", log), log


def test_caffe_tool_rejects_bad_sizes_with_message(tmp_path):
    res = run_caffe_time(tmp_path, 27)  # R1 27x27 is not twice R2's 14x14
    assert res.returncode != 0
    assert "ROIFeatureFusion rff: spatial sizes must be 4:2:1" in res.stderr, res.stderr
    assert "27x27, 14x14, 7x7" in res.stderr
