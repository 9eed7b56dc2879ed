"""The benchmark cases exported for `caffe time`: their random inputs follow the pycaffe fillers,
and the tool's log is read back for every timed layer."""
import os
import re
import subprocess

import caffe
import numpy as np

from fassst.bench import caffe_time, layer_cases, rff_cases
from fassst.build_paths import caffe_tool
from fassst.net.load import caffe_net


def test_exported_inputs_match_the_fillers():
    caffe.set_mode_cpu()
    roi_net = caffe_net(caffe_time.for_caffe_time(layer_cases.pyramid_roi_align()), caffe.TEST)
    roi_net.forward()
    rois = roi_net.blobs["rois"].data
    assert rois.shape == (layer_cases.ROIS, 5)
    assert np.all(rois[:, 0] == 0)
    wh = rois[:, 3:5] - rois[:, 1:3]
    assert rois[:, 1:3].min() >= 0 and rois[:, 1:3].max() <= layer_cases.SIZE * 0.7
    assert wh.min() >= 8 and wh.max() <= layer_cases.SIZE * 0.3
    assert roi_net.blobs["p1"].data.std() > 0.9  # Gaussian features, not zeros

    dice_net = caffe_net(caffe_time.for_caffe_time(layer_cases.dice_loss()), caffe.TEST)
    dice_net.forward()
    target = dice_net.blobs["target"].data
    near_binary = np.minimum(target, 1 - target) < 1e-3
    assert near_binary.mean() > 0.98
    assert 0.08 < (target > 0.5).mean() < 0.12


def test_caffe_time_log_gives_every_timed_layer(tmp_path):
    proto = rff_cases.stock(rois=2, channels=4, side=7)
    model = tmp_path / "stock_rff.prototxt"
    model.write_text(str(caffe_time.for_caffe_time(proto)))
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    res = subprocess.run([caffe_tool(), "time", "-model", str(model), "-iterations", "2"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    times = caffe_time.parse_log(res.stderr)
    assert caffe_time.timed_layers(proto) == ["up3", "sum2", "up2", "sum1", "rff"]
    # every layer of the exported net, its DummyData inputs too (timed, but not counted), with
    # the numbers of its own two lines
    net = [layer.name for layer in caffe_time.for_caffe_time(proto).layer]
    assert sorted(times) == sorted(net)
    lines = {(name, way): float(ms) for name, way, ms in
             re.findall(r"\s(\S+)\t(forward|backward): ([0-9.e+-]+) ms\.", res.stderr)}
    assert len(lines) == 2 * len(net)
    for name in net:
        assert times[name] == [lines[name, "forward"], lines[name, "backward"]]
    # `caffe time` runs each whole pass inside one timer around the per-layer ones (tools/
    # caffe.cpp, microsecond stamps), so the layers' times add up to at most the pass's
    forward, backward = caffe_time.forward_pass_ms(res.stderr), _backward_pass_ms(res.stderr)
    assert sum(f for f, _ in times.values()) <= forward + 1e-9
    assert sum(b for _, b in times.values()) <= backward + 1e-9


def _backward_pass_ms(text):
    return float(re.search(r"Average Backward pass: ([0-9.e+-]+) ms", text).group(1))
