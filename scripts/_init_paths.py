"""Puts this checkout's python/ and its built pycaffe first on sys.path (py-faster-rcnn's idiom),
so scripts run without PYTHONPATH and never pick up another clone's build."""
import os
import sys

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_root, "python"))
from fassst.build_paths import pycaffe_dir  # noqa: E402
from fassst.openblas_core import choose_core  # noqa: E402

sys.path.insert(1, pycaffe_dir())
os.environ.setdefault("GLOG_minloglevel", "2")  # Caffe's per-layer setup log is noise here
choose_core()  # before anything loads Caffe and with it OpenBLAS
