"""fassst_time (layers/tools/fassst_time.cpp), the whole-net timer of the GPU check: it runs
the passes asked for and refuses bad input in one line."""
import os
import subprocess

import caffe
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


def _weights(tmp_path, num_output):
    """A caffemodel of NET with num_output filters (pycaffe: fillers as the prototxt says)."""
    net_path = tmp_path / f"tiny{num_output}.prototxt"
    net_path.write_text(NET.replace("num_output: 4", f"num_output: {num_output}"))
    caffe.set_mode_cpu()
    path = tmp_path / f"tiny{num_output}.caffemodel"
    caffe.Net(str(net_path), caffe.TEST).save(str(path))
    return path


def test_weights_that_fit_are_loaded_and_others_refused_in_one_line(tmp_path):
    net = tmp_path / "tiny.prototxt"
    net.write_text(NET)
    res = _run("-model", str(net), "-weights", str(_weights(tmp_path, 4)), "-iterations", "1")
    assert res.returncode == 0, res.stderr
    other = _weights(tmp_path, 5)
    res = _run("-model", str(net), "-weights", str(other), "-iterations", "1")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"error: fassst_time: {other}: does not fit {net}: layer conv blob 0: shape 5 3 3 3 in "
        f"the weights, 4 3 3 3 (108) in the net")


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


# NET with a change planted after the convolution, in place: the same blobs, `conv` shifted
PLANTED = NET + """layer { name: "plant" type: "Power" bottom: "conv" top: "conv"
        power_param { shift: SHIFT } }
"""


def _check_against(tmp_path, shift, *args):
    net = tmp_path / "tiny.prototxt"
    net.write_text(NET)
    other = tmp_path / f"planted{shift}.prototxt"
    other.write_text(PLANTED.replace("SHIFT", str(shift)) if shift is not None else NET)
    res = _run("-model", str(net), "-iterations", "1", "-check_against", str(other), *args)
    verdict = [line for line in res.stdout.splitlines() if " over 2 blobs: " in line]
    assert verdict and verdict[-1].startswith(f"fassst_time: {net}: CPU vs {other} on the CPU over "
                                              f"2 blobs: worst relative difference "), res.stdout
    return res, verdict[-1]


def test_check_against_an_identical_net_passes(tmp_path):
    """The other net takes this one's weights, its DummyData draws from the same seed: equal."""
    res, verdict = _check_against(tmp_path, None)
    assert res.returncode == 0, res.stdout + res.stderr
    assert verdict.endswith("worst relative difference 0 (blob -); 0 over 0.001")


def test_check_against_a_planted_difference_fails_naming_the_blob(tmp_path):
    """The comparison's failure branch, which -check_cpu reaches only on a GPU that disagrees."""
    res, verdict = _check_against(tmp_path, 0.5)
    assert res.returncode == 1, res.stdout + res.stderr
    over = [line for line in res.stdout.splitlines() if line.startswith("fassst_time: blob ")]
    assert len(over) == 1 and over[0].startswith("fassst_time: blob conv: max |diff| 0.5, ")
    assert verdict.endswith("(blob conv); 1 over 0.001")  # data, the input, is equal


def test_check_against_applies_the_tolerance(tmp_path):
    res, verdict = _check_against(tmp_path, 1e-6)  # relative ~1e-6: within the default 1e-3
    assert res.returncode == 0 and verdict.endswith("(blob conv); 0 over 0.001"), res.stdout
    res, verdict = _check_against(tmp_path, 1e-6, "-check_tolerance", "0")
    assert res.returncode == 1 and verdict.endswith("(blob conv); 1 over 0"), res.stdout


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
    (["-model", "{bad}"], "{bad}: not a net prototxt (NetParameter in text format)"),
    (["-model", "{inputs}"], "{inputs}: the net has input blobs; time a net that makes its own "
                             "input"),
    (["-weights", "{garbled}"], "{garbled}: not a caffemodel (NetParameter in binary format)"),
    (["-weights", "{bad}"], "{bad}: does not fit {net}: no layer of the net is in it (weights "
                            "of another net, or not weights)"),
    (["-check_cpu", "-check_against", "{net}"], "-check_cpu and -check_against: one or the other"),
    (["-check_against", "/nonexistent/o.prototxt"],
     "/nonexistent/o.prototxt: cannot read the -check_against file"),
    (["-check_against", "{bad}"], "{bad}: not a net prototxt (NetParameter in text format)"),
    (["-check_against", "{renamed}"], "{renamed}: has no blob conv to compare with {net}'s"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    net = tmp_path / "tiny.prototxt"
    net.write_text(NET)
    paths = dict(bad=tmp_path / "bad.txt", inputs=tmp_path / "inputs.prototxt", net=net,
                 garbled=tmp_path / "garbled.caffemodel", renamed=tmp_path / "renamed.prototxt")
    paths["renamed"].write_text(NET.replace('top: "conv"', 'top: "conv2"'))
    paths["bad"].write_text("layer { this is not a net")
    paths["garbled"].write_bytes(b"\xff" * 16)  # no valid protobuf tag
    paths["inputs"].write_text('input: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n')
    args = [a.format(**paths) for a in args]
    message = message.format(**paths)
    if args[:1] != ["-model"] and args:
        args = ["-model", str(net), *args]
    res = _run(*args)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == f"error: fassst_time: {message}"
