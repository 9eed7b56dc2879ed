"""Training logs: Caffe's raw glog output to one file, and a log in `caffe train`'s format.

caffe_log_to(): Caffe's own glog output (C++, file descriptor 2) goes to a file, so stdout stays
free for the progress bar. Python's errors still reach the terminal: fd 2 is restored before
anything re-raises.

CaffeFormatLog: the lines Caffe's tools/extra/parse_log.{sh,py} and extract_seconds.py read
("Solving", "Iteration N, loss = L", "Train net output #k: ...", "Iteration N, lr = X", and for a
validation "Iteration N, Testing net (#0)" then "Test net output #k: ..."), in the classic glog
prefix "I<mmdd> <hh:mm:ss.us> <pid> <file:line>]". The glog linked here prints the year too
("I2026mmdd"), which those tools misread as a month, so the runner writes this log itself rather
than handing over Caffe's.
"""
import contextlib
import os
import sys
import time


class CaffeFormatLog:
    def __init__(self, path):
        self.path = path

    def _line(self, source, message, level="I"):
        now = time.time()
        stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
        with open(self.path, "a") as f:
            f.write(f"{level}{stamp} {os.getpid():>5d} {source}] {message}\n")

    def warning(self, message):
        """A glog W line: parse_log skips it, a reader (or grep '^W') sees it."""
        self._line("trainer.py:0", message, level="W")

    def solving(self, net_name, lr_policy):
        self._line("solver.cpp:288", f"Solving {net_name}")
        self._line("solver.cpp:289", f"Learning Rate Policy: {lr_policy}")

    def iteration(self, it, smoothed_loss, lr, outputs):
        """outputs: [(name, raw value, loss weight)] in the net's output order."""
        self._line("solver.cpp:231", f"Iteration {it}, loss = {smoothed_loss:.6g}")
        for k, (name, value, weight) in enumerate(outputs):
            self._line("solver.cpp:247", f"    Train net output #{k}: {name} = {value:.6g} "
                                         f"(* {weight:g} = {value * weight:.6g} loss)")
        self._line("sgd_solver.cpp:106", f"Iteration {it}, lr = {lr:g}")

    def test_outputs(self, it, outputs):
        """A validation of the weights after `it` iterations, as Caffe's Solver::Test logs one
        (before the display of iteration `it`). outputs: [(name, value)]; parse_log.sh reads
        outputs #0 and #1 as its TestAccuracy and TestLoss columns, parse_log.py all of them."""
        self._line("solver.cpp:330", f"Iteration {it}, Testing net (#0)")
        for k, (name, value) in enumerate(outputs):
            self._line("solver.cpp:418", f"    Test net output #{k}: {name} = {value:.4f}")


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
