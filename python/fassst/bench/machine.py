"""Facts about the machine a benchmark runs on, recorded beside its figures: the processor or GPU,
the checkout's commit, the load from other processes, and numpy's sgemm rate (the compute bound a
net's multiply-adds per second are held against)."""
import os
import platform
import statistics
import subprocess
import time

import numpy as np

from fassst.build_paths import REPO_ROOT


def sgemm_rate(n=2048, repeats=5):
    """numpy float32 (n x n) @ (n x n), all cores: multiply-adds per second (median)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), np.float32), rng.standard_normal((n, n), np.float32)
    a @ b  # warm-up: threads started, pages touched
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return n ** 3 / statistics.median(times)


def cpu_name():
    """The processor's model name (/proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_name():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        return out.splitlines()[0] if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def hardware(gpu=None):
    """What the figures were measured on: "GPU <id> (<name>)" or "CPU: <model>, <n> cores"."""
    if gpu is not None:
        return f"GPU {gpu} ({gpu_name()})"
    return f"CPU: {cpu_name()}, {os.cpu_count()} cores"


def git_hash():
    """The checkout's short commit hash ("unknown" outside git)."""
    try:
        return subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_average():
    """The 1-minute load average (None where the system has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None
