"""What scripts/gpu_check.sh asks of Python on the GPU machine, run there as
`python3 -m fassst.gpu_check.device COMMAND` with this checkout's python/ on PYTHONPATH. The
standard library only (and torch where it is installed): that machine's Python need not load this
build's pycaffe.

    unpack TAR DEST   extract the bundle where `tar` cannot (an xz-less tar)
    lib-dirs          the lib/ folders of pip's nvidia-* packages, one a line (none without them)
    versions          Python's version, then torch's with its CUDA, cuDNN and GPU, or its absence
"""
import glob
import os
import sys
import tarfile


def unpack(tar, dest):
    with tarfile.open(tar) as t:
        t.extractall(dest, **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))


def nvidia_lib_dirs():
    """The CUDA libraries pip's nvidia-* packages hold (torch's own CUDA), for the bundle's binaries."""
    try:
        import nvidia
    except ImportError:
        return []
    return [d for p in nvidia.__path__ for d in sorted(glob.glob(os.path.join(p, "*", "lib")))]


def versions():
    lines = [sys.version.split()[0]]
    try:
        import torch
    except ImportError:
        return lines + ["torch: not installed"]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return lines + [" ".join(str(x) for x in (
        "torch", torch.__version__, "cuda", torch.version.cuda, "cudnn",
        torch.backends.cudnn.version(), "gpu", gpu))]


def main(argv):
    if argv[:1] == ["unpack"] and len(argv) == 3:
        unpack(argv[1], argv[2])
    elif argv == ["lib-dirs"]:
        for d in nvidia_lib_dirs():
            print(d)
    elif argv == ["versions"]:
        for line in versions():
            print(line)
    else:
        print(f"usage: python3 -m fassst.gpu_check.device unpack TAR DEST | lib-dirs | versions; "
              f"got {argv}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
