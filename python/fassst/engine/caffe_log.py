"""Routes Caffe's own glog output (written by C++ to file descriptor 2) into a log file.

The log then holds Caffe's real "Iteration N, loss = ..." / "Train net output #k" / "lr = ..."
lines, which Caffe's tools/extra/parse_log.py reads, while stdout stays free for the progress
bar. Python's own errors still reach the terminal: fd 2 is restored before anything re-raises.
"""
import contextlib
import os
import sys


@contextlib.contextmanager
def caffe_log_to(path):
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
