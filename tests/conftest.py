"""Tests run against this checkout's python/ and its built pycaffe, set up exactly as the scripts
set them up (scripts/_init_paths.py), so another clone's build is never picked up."""
import os
import runpy
import subprocess

import pytest

runpy.run_path(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "scripts", "_init_paths.py"))


@pytest.fixture
def parse_caffe_log(tmp_path):
    """Runs Caffe's own tools/extra/parse_log.sh on a log text; returns its (train, test) tables
    as lists of split rows, headers dropped."""
    from fassst.build_paths import build_dir

    def parse(text):
        folder = tmp_path / "parse_log"
        folder.mkdir(exist_ok=True)
        (folder / "train.log").write_text(text)
        tool = os.path.join(build_dir(), "caffe", "tools", "extra", "parse_log.sh")
        res = subprocess.run(["bash", tool, "train.log"], cwd=folder, capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        return tuple([line.split() for line in (folder / f"train.log.{kind}").read_text().splitlines()[1:]]
                     for kind in ("train", "test"))
    return parse


@pytest.fixture(params=["native", "numpy"])
def mask_path(request, monkeypatch):
    """Runs a test on both paths of the mask paste-back and RLE: the C++ module fassst_masks
    (which scripts/test.sh builds, so it must load) and the numpy path (FASSST_NATIVE=0)."""
    from fassst import native

    monkeypatch.setenv("FASSST_NATIVE", "1" if request.param == "native" else "0")
    if request.param == "native":
        assert native.masks() is not None, f"fassst_masks is not built in {native.native_dir()}"
    return request.param
