"""Where the built Caffe lives: the build dir, pycaffe, and the `caffe` command-line tool.

The build dir is $FASSST_BUILD_DIR if set, else <repo>/build (what scripts/setup.sh makes).
"""
import os

from fassst.errors import MissingFileError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_dir():
    return os.path.abspath(os.environ.get("FASSST_BUILD_DIR") or os.path.join(REPO_ROOT, "build"))


def pycaffe_dir():
    """Folder holding the `caffe` Python package (with _caffe.so and the generated caffe_pb2)."""
    return os.path.join(build_dir(), "caffe", "python")


def caffe_tool():
    """Path of the stock `caffe` binary (train/test/time), built with the FASSST layers."""
    path = os.path.join(build_dir(), "caffe-build", "tools", "caffe")
    if not os.path.isfile(path):
        raise MissingFileError(
            f"{path}: the caffe tool is not built. Run scripts/setup.sh "
            f"(or set FASSST_BUILD_DIR to your build dir).")
    return path
