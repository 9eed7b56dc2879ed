"""The GPU bundle (scripts/gpu_bundle.py): everything one run on a GPU machine needs.

Why a bundle: the device machine has no apt, no network and Python 3.12, so this build's pycaffe
(Boost.Python for 3.11) cannot load there; only Caffe's own binaries run. The bundle holds
  bin/caffe, bin/fassst_layer_tests,  the tool, the layer tests and the whole-net timer
  bin/fassst_time                      (layers/tools/fassst_time.cpp) of a build
  lib/                                 every shared library they load (ldd), named by soname,
                                       except glibc's own, the driver's and the CUDA toolkit's
                                       (gpu_check.json "exclude_libs"): the device has those,
                                       and the toolkit's are hundreds of MB
  nets/<group>/                        the benchmark nets from the existing --export routes, with
                                       their nets.json / cases.json and timed.txt (what to time)
  plan.txt                             the steps scripts/gpu_check.sh runs, in order (a nets
                                       step may end with VAR=VALUE to time its nets with)
  cudnn_shapes.json                    the shapes scripts/cudnn_probe.py times with torch
  bundle.json                          the manifest: commit, build, libraries, sizes
packed as one tarball (out/bundle.tar.xz or .gz) beside a copy of the manifest. The nets come
from this machine's pycaffe (FASSST_BUILD_DIR); the binaries from the build given (the GPU one).
"""
import datetime
import fnmatch
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile

from fassst.bench import caffe_time, depthwise_cases, net_bench
from fassst.bench.cases import CASES
from fassst.build_paths import REPO_ROOT
from fassst.config import load_config
from fassst.engine.run_dir import git_revision
from fassst.errors import InputError, MissingFileError
from fassst.gpu_check import tail_cases

CHECK = os.path.join(os.path.dirname(__file__), "gpu_check.json")
BINARIES = {"caffe": ("caffe-build", "tools", "caffe"),
            "fassst_layer_tests": ("bin", "fassst_layer_tests"),
            "fassst_time": ("bin", "fassst_time")}
COMPRESSION = {"xz": "w:xz", "gz": "w:gz"}
CARRY_LIMIT = 64 * 2 ** 20   # the device call's limit on carried paths with the working tree
CARRY_COMFORT = 48 * 2 ** 20
# The GPU's batched convolution GEMMs on TF32 tensor cores (caffe/util/batched_conv.hpp).
TF32_ENV = "FASSST_GPU_TF32=1"
_LDD = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)")


def check_settings():
    with open(CHECK) as f:
        return json.load(f)


# ---- shared libraries ----

def ldd(binary):
    """{soname: resolved path, or None when ldd says not found} for one binary (all of its
    libraries, the indirect ones too, as the loader resolves them here)."""
    res = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if res.returncode != 0:
        raise InputError(f"{binary}: ldd failed: {res.stderr.strip() or res.stdout.strip()}")
    libs = {}
    for line in res.stdout.splitlines():
        m = _LDD.match(line)
        if m:
            libs[m.group(1)] = None if m.group(2) == "not found" else m.group(2)
    return libs


def exclusion(soname, path, settings):
    """Why the device is left to provide this library (a reason string), or None to stage it."""
    for reason, patterns in settings["exclude_libs"].items():
        if any(fnmatch.fnmatch(soname, p) for p in patterns):
            return reason
    if path:
        for reason, dirs in settings["exclude_lib_dirs"].items():
            for p in (path, os.path.realpath(path)):
                if any(p.startswith(d) for d in dirs):
                    return reason
    return None


def plan_libs(binaries, settings):
    """(staged {soname: real path}, left {soname: reason}) for the binaries' libraries; a library
    to stage that ldd cannot find is an InputError naming the binary."""
    staged, left = {}, {}
    for binary in binaries:
        for soname, path in ldd(binary).items():
            reason = exclusion(soname, path, settings)
            if reason:
                left[soname] = reason
            elif path is None:
                raise InputError(f"{binary}: needs {soname}, which ldd does not find here")
            else:
                staged[soname] = os.path.realpath(path)
    return staged, left


# ---- the plan and the nets ----

def parse_step(step):
    """('bench', config, stock, tf32) | ('tail', config) | ('depthwise', size) | ('layers',) |
    ('probe',) | ('gtests',) from a plan entry of gpu_check.json. bench:CONFIG+stock adds the
    baselines (stock depthwise, Caffe's per-image convolution); +tf32 times the nets with
    TF32_ENV (a group of its own)."""
    kind, _, arg = step.partition(":")
    if kind == "bench" and arg:
        config, *flags = arg.split("+")
        if not config or set(flags) - {"stock", "tf32"} or len(set(flags)) != len(flags):
            raise InputError(f"plan step {step!r}: only '+stock' and '+tf32' may follow the "
                             f"config, once each")
        return ("bench", config, "stock" in flags, "tf32" in flags)
    if kind == "tail" and arg:
        return ("tail", arg)
    if kind == "depthwise" and arg.isdigit():
        return ("depthwise", int(arg))
    if kind in ("layers", "probe", "gtests") and not arg:
        return (kind,)
    raise InputError(f"plan step {step!r}: expected bench:CONFIG[+stock][+tf32], tail:CONFIG, "
                     f"depthwise:SIZE, layers, probe or gtests")


def group_dir(step):
    kind = step[0]
    if kind == "layers":
        return kind
    return f"{kind}_{step[1]}" + ("_tf32" if kind == "bench" and step[3] else "")


def step_env(step):
    """The environment a step's nets are timed with ("" for none)."""
    return TF32_ENV if step[0] == "bench" and step[3] else ""


def _write_lines(path, lines):
    with open(path, "w") as f:
        f.write("".join(f"{line}\n" for line in lines))


def export_bench(cfg, out_dir, stock, env=""):
    """bench.py --export into a scratch folder; keeps only what `caffe time` and
    net_report.from_logs read (nets.json and its nets; the random caffemodels stay behind).
    stock: with the stock-depthwise and per-image-convolution baselines."""
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        net_bench.export(cfg, scratch, stock, net_bench.DEPLOYS, stock_conv=stock, env=env)
        with open(os.path.join(scratch, "nets.json")) as f:
            names = list(json.load(f)["nets"])
        for name in ["nets.json"] + [n + ".prototxt" for n in names]:
            shutil.copy(os.path.join(scratch, name), out_dir)
    return names


def export_cases(cases, out_dir):
    """The write_cases route (bench_layers.py / bench_depthwise.py --export); the nets' names."""
    caffe_time.write_cases(cases, out_dir)
    with open(os.path.join(out_dir, "cases.json")) as f:
        return list(json.load(f))


def probe_shapes(step):
    """cudnn_shapes.json entries for a tail or depthwise step: the torch shape and the Caffe
    cases (by kind) that time the same convolution, for the report's join."""
    group = group_dir(step)
    if step[0] == "tail":
        cfg = load_config(step[1])
        return [dict(group=group, case=tail_cases.case_name(key, count), kind="conv", n=key[0],
                     c_in=key[1], c_out=key[2], h=key[3], w=key[4], kernel=key[5], stride=key[6],
                     pad=key[7], groups=1, count=count,
                     caffe={"Convolution": tail_cases.case_name(key, count)})
                for key, count in tail_cases.shapes(cfg).items()]
    out = []
    for (c, side, stride), count in depthwise_cases.shapes(step[1]).items():
        case = f"{c}x{side}x{side} s{stride} (x{count})"
        out.append(dict(group=group, case=case, kind="depthwise", n=1, c_in=c, c_out=c, h=side,
                        w=side, kernel=3, stride=stride, pad=1, groups=c, count=count,
                        caffe={kind: f"{kind} {case}" for kind in depthwise_cases.KINDS}))
    return out


def export_step(step, nets_dir):
    """Writes one step's nets under nets_dir/<group>/ (with timed.txt); returns the group."""
    group = group_dir(step)
    out = os.path.join(nets_dir, group)
    if step[0] == "bench":
        names = export_bench(load_config(step[1]), out, step[2], step_env(step))
    elif step[0] == "tail":
        names = export_cases(tail_cases.cases(load_config(step[1])), out)
    elif step[0] == "depthwise":
        names = export_cases(depthwise_cases.cases(step[1]), out)
    else:
        names = export_cases(CASES, out)
    _write_lines(os.path.join(out, "timed.txt"), names)
    return group


# ---- staging and packing ----

def _tree_bytes(root):
    total = 0
    for folder, _, files in os.walk(root):
        total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    return total


def working_tree_bytes():
    """Bytes of what the device call copies besides the carried paths: tracked files and
    untracked files git does not ignore (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", REPO_ROOT, "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    paths = [os.path.join(REPO_ROOT, p) for p in out.decode().split("\0") if p]
    return sum(os.path.getsize(p) for p in paths if os.path.isfile(p))


def _build_kind(build):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            return "GPU" if "FASSST_CUDA:BOOL=ON" in f.read() else "CPU"
    except OSError:
        return "unknown"


def _clear_out(out):
    """Removes a previous bundle from out (idempotence); refuses a folder holding anything else."""
    if not os.path.isdir(out):
        os.makedirs(out)
        return
    foreign = [n for n in os.listdir(out) if not (n.startswith("bundle.") or n == "stage")]
    if foreign:
        raise InputError(f"{out}: holds {sorted(foreign)[:5]}, not a bundle folder; give another --out")
    for name in os.listdir(out):
        path = os.path.join(out, name)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


def stage(build, out, plan=None, compress="xz", log=print):
    """Stages the bundle of `build`'s binaries and the plan's nets, packs it into
    out/bundle.tar.<compress>, and returns the manifest (also written to out/bundle.json)."""
    settings = check_settings()
    steps = [parse_step(s) for s in (plan or settings["plan"])]
    if compress not in COMPRESSION:
        raise InputError(f"compression {compress!r}: expected one of {sorted(COMPRESSION)}")
    binaries = {}
    for name, parts in BINARIES.items():
        path = os.path.join(build, *parts)
        if not os.path.isfile(path):
            raise MissingFileError(f"{path}: not built; build the targets caffe.bin, "
                                   f"fassst_layer_tests and fassst_time in {build}")
        binaries[name] = path
    staged, left = plan_libs(binaries.values(), settings)
    _clear_out(out)
    root = os.path.join(out, "stage", "bundle")
    for sub in ("bin", "lib", "nets"):
        os.makedirs(os.path.join(root, sub))
    for name, path in binaries.items():
        shutil.copy2(path, os.path.join(root, "bin", name))
    for soname, path in sorted(staged.items()):
        shutil.copy2(path, os.path.join(root, "lib", soname))
    log(f"staged 2 binaries and {len(staged)} libraries from {build} "
        f"({len(left)} left to the device)")

    plan_lines, shapes = [], []
    for step in steps:
        if step[0] in ("probe", "gtests"):
            plan_lines.append(step[0])
            continue
        group = export_step(step, os.path.join(root, "nets"))
        plan_lines.append(f"nets {group} {settings['iterations'][step[0]]} {step_env(step)}".rstrip())
        if step[0] in ("tail", "depthwise"):
            shapes += probe_shapes(step)
        log(f"exported {group}")
    _write_lines(os.path.join(root, "plan.txt"), plan_lines)
    with open(os.path.join(root, "cudnn_shapes.json"), "w") as f:
        json.dump(shapes, f, indent=1)

    lib_dir = os.path.join(root, "lib")
    manifest = dict(
        created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        commit=git_revision(), build=os.path.abspath(build), build_kind=_build_kind(build),
        plan=list(plan or settings["plan"]),
        libraries={n: os.path.getsize(os.path.join(lib_dir, n)) for n in sorted(staged)},
        left_to_device=dict(sorted(left.items())),
        binaries={n: os.path.getsize(os.path.join(root, "bin", n)) for n in binaries},
        staged_bytes=0)
    manifest["staged_bytes"] = _tree_bytes(root)
    with open(os.path.join(root, "bundle.json"), "w") as f:
        json.dump(manifest, f, indent=1)

    packed = os.path.join(out, f"bundle.tar.{compress}")
    with tarfile.open(packed, COMPRESSION[compress]) as tar:
        tar.add(root, arcname="bundle")
    shutil.rmtree(os.path.join(out, "stage"))
    manifest.update(packed=os.path.basename(packed), packed_bytes=os.path.getsize(packed),
                    working_tree_bytes=working_tree_bytes())
    with open(os.path.join(out, "bundle.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    carry = manifest["packed_bytes"] + os.path.getsize(os.path.join(out, "bundle.json"))
    tree = manifest["working_tree_bytes"] or 0
    log(f"{packed}: {_mib(manifest['packed_bytes'])} packed ({_mib(manifest['staged_bytes'])} "
        f"staged); with the working tree ({_mib(tree)}) {_mib(carry + tree)} of the device "
        f"call's 64 MiB")
    if carry + tree > CARRY_LIMIT:
        raise InputError(f"{packed}: {_mib(carry + tree)} with the working tree, over the device "
                         f"call's 64 MiB; try --compress xz or fewer plan steps")
    if carry + tree > CARRY_COMFORT:
        log(f"warning: {_mib(carry + tree)} is near the device call's 64 MiB")
    return manifest


def _mib(n):
    return f"{n / 2 ** 20:.1f} MiB"
