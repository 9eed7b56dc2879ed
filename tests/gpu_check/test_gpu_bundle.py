"""The GPU check in one call, run here through its --cpu path on this machine's CPU build: the
bundle is staged (small plan), scripts/gpu_check.sh --cpu runs every step from the unpacked
bundle alone, and scripts/gpu_report.py reads what it wrote. The GPU path itself needs a GPU."""
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from fassst.bench import caffe_time, net_report
from fassst.build_paths import REPO_ROOT, build_dir
from fassst.config import load_config
from fassst.errors import InputError
from fassst.gpu_check import bundle as gpu_bundle, report as gpu_report, tail_cases

# +stock+tf32: the baselines' nets and a group timed with an environment (a no-op on the CPU)
PLAN = ("bench:fassst_cpu_sample+stock+tf32,layers,tail:fassst_cpu_sample,depthwise:64,probe,"
        "gtests")
SCRIPTS = os.path.join(REPO_ROOT, "scripts")
ENV = dict(os.environ, OPENBLAS_NUM_THREADS="1")


def _stage(out):
    return subprocess.run([os.path.join(SCRIPTS, "gpu_bundle.py"), "--build", build_dir(), "--out",
                           str(out), "--plan", PLAN, "--compress", "gz"],
                          capture_output=True, text=True, env=ENV, timeout=300)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu_bundle")
    staged = _stage(tmp / "bundle")
    assert staged.returncode == 0, staged.stderr
    checked = subprocess.run([os.path.join(SCRIPTS, "gpu_check.sh"), "--cpu", "--iters", "2",
                              "--bundle", str(tmp / "bundle"), "--out", str(tmp / "out")],
                             capture_output=True, text=True, env=ENV, timeout=600)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert sorted(os.listdir(tmp / "out")) == ["logs.tar.gz", "summary.txt"]
    results = gpu_report.unpack(str(tmp / "out"), str(tmp / "unpacked"))
    return dict(tmp=tmp, results=results, stdout=checked.stdout)


def test_lib_folder_holds_libcaffe_and_no_glibc_or_cuda_toolkit(run, tmp_path):
    with tarfile.open(run["tmp"] / "bundle" / "bundle.tar.gz") as t:
        t.extractall(tmp_path)
    lib = tmp_path / "bundle" / "lib"
    names = set(os.listdir(lib))
    assert "libcaffe.so.1.0.0-rc3" in names
    for banned in ("libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
                   "ld-linux-x86-64.so.2", "libresolv.so.2"):
        assert banned not in names
    assert not [n for n in names if n.startswith(("libcuda", "libnvidia-", "libcudart", "libcublas",
                                                  "libcurand", "libcudnn"))]
    # the staged tool resolves every library from the bundle, glibc's aside
    res = subprocess.run(["ldd", str(tmp_path / "bundle" / "bin" / "caffe")], capture_output=True,
                         text=True, env=dict(os.environ, LD_LIBRARY_PATH=str(lib)))
    assert res.returncode == 0 and "not found" not in res.stdout, res.stdout
    resolved = {}
    for line in res.stdout.splitlines():
        if "=>" in line:
            soname, path = line.split("=>")[0].strip(), line.split("=>")[1].split()[0]
            resolved[soname] = path
    assert resolved["libcaffe.so.1.0.0-rc3"] == str(lib / "libcaffe.so.1.0.0-rc3")
    settings = gpu_bundle.check_settings()
    outside = {s: p for s, p in resolved.items() if not p.startswith(str(lib) + "/")}
    assert outside and all(gpu_bundle.exclusion(s, p, settings) == "glibc" for s, p in outside.items())
    # every staged library is one the tests' binaries load: nothing extra
    assert set(resolved) - set(outside) <= names


def test_every_exported_net_was_timed(run):
    results = run["results"]
    with open(os.path.join(results, "plan.txt")) as f:
        groups = [line.split()[1] for line in f if line.startswith("nets ")]
    assert groups == ["bench_fassst_cpu_sample_tf32", "layers", "tail_fassst_cpu_sample",
                      "depthwise_64"]
    for group in groups:
        folder = os.path.join(results, "nets", group)
        with open(os.path.join(folder, "timed.txt")) as f:
            names = f.read().split()
        assert names
        for name in names:
            with open(os.path.join(folder, name + ".log")) as f:
                text = f.read()
            assert caffe_time.forward_pass_ms(text) > 0, (group, name)
            assert "Testing for 2 iterations." in text  # --iters reached the tool
        if group.startswith("bench_"):
            for name in names:  # and once more through fassst_time, its passes as asked
                with open(os.path.join(folder, name + ".whole.log")) as f:
                    text = f.read()
                assert caffe_time.whole_forward_ms(text) > 0, name
                assert "forward over 2 passes" in text and "(CPU)" in text
                check = caffe_time.cpu_check(text)
                assert check["blobs"] > 100 and check["worst"] == 0 and check["over"] == 0, name
                assert check["tolerance"] == 3e-2  # the TF32 group's
            table = net_report.from_logs(folder, "here, FASSST_GPU_TF32=1")
            for label in ("plain, stock depthwise", "plain", "folded", "folded, im2col 3x3"):
                assert f"| {label} |" in table
        else:
            rows = caffe_time.rows_from_logs(folder)
            assert len(rows) == len(names) and all(f >= 0 and b >= 0 for _, f, b in rows)


def test_report_reads_the_run(run, tmp_path):
    md = tmp_path / "gpu_test.md"
    res = subprocess.run([os.path.join(SCRIPTS, "gpu_report.py"), str(run["tmp"] / "out"), "--out",
                          str(md)], capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 0, res.stderr
    text = md.read_text()
    gt = gpu_report.gtest_summary(run["results"])
    assert gt["complete"] and gt["passed"] > 0 and gt["failed"] == 0
    assert gt["listed"] == gt["total"]  # every test --gtest_list_tests names ran
    assert f"{gt['total']} of {gt['listed']} listed tests ran: **{gt['passed']} passed, 0 failed**" in text
    # the FPS row is the log's own forward time
    folder = os.path.join(run["results"], "nets", "bench_fassst_cpu_sample_tf32")
    with open(os.path.join(folder, "folded.log")) as f:
        layered = caffe_time.forward_pass_ms(f.read())
    with open(os.path.join(folder, "folded.whole.log")) as f:
        whole = caffe_time.whole_forward_ms(f.read())
    # FPS from fassst_time's median; the group's environment in the row's label and in the
    # steps' summary lines
    assert (f"| fassst_cpu_sample | folded, FASSST_GPU_TF32=1 | {layered:.2f} | {whole:.2f} | "
            f"{1e3 / whole:.1f} |") in text
    # the CPU against itself from the same seed: every blob equal (the inputs are redrawn alike)
    assert "| 0 (-): ok |" in text
    assert "step bench_fassst_cpu_sample_tf32/folded (FASSST_GPU_TF32=1): ok" in text
    assert "step bench_fassst_cpu_sample_tf32/folded (FASSST_GPU_TF32=1), fassst_time: ok" in text
    assert "Not measured in this run: fassst_416_coco, fassst_768_cityscapes." in text
    # without torch or CUDA the probe says so in one line, and the report carries it
    assert "not measured: cudnn_probe: torch" in text
    assert "all, weighted" in text  # the depthwise pairs were matched


def test_report_joins_probe_rows_to_caffe_times(run, tmp_path):
    """A probe record (its numbers made up: no GPU here) lands beside Caffe's logged time of the
    same shape, and the speed-up is Caffe's over cuDNN's."""
    results = tmp_path / "results"
    shutil.copytree(run["results"], results)
    with open(results / "cudnn_shapes.json") as f:
        shapes = json.load(f)
    tail = next(s for s in shapes if s["kind"] == "conv")
    caffe_ms = dict((n, f) for n, f, _ in caffe_time.rows_from_logs(
        str(results / "nets" / tail["group"])))[tail["caffe"]["Convolution"]]
    probe = dict(device="made up", torch="0", cuda="0", cudnn=0, repeats=1, rows=[
        dict(group=s["group"], case=s["case"],
             times=dict(cudnn_fp32=[0.5, 1.0], cudnn_tf32=[0.25, 0.5], native=[2.0, 4.0]))
        for s in shapes])
    with open(results / "cudnn_probe.json", "w") as f:
        json.dump(probe, f)
    text = gpu_report.cudnn_markdown(str(results))
    row = next(line for line in text.splitlines() if tail["case"].split(" (")[0] in line)
    assert f"| {caffe_ms:.3f} / " in row and row.endswith(f"| {caffe_ms / 0.5:.1f}x |")
    saved = tail["count"] * (caffe_ms - 0.5)
    assert f"cuDNN would save {saved:.2f} ms a forward" in text


def test_gtest_log_cut_short_counts_the_unfinished_test(run, tmp_path):
    with open(os.path.join(run["results"], "gtest.log")) as f:
        lines = f.read().splitlines()
    last_run = max(i for i, line in enumerate(lines) if line.startswith("[ RUN      ]"))
    (tmp_path / "gtest.log").write_text("\n".join(lines[:last_run + 1]) + "\n")
    full = gpu_report.gtest_summary(run["results"])
    cut = gpu_report.gtest_summary(str(tmp_path))
    assert not cut["complete"]
    assert cut["passed"] == full["passed"] - 1 and cut["failed"] == 1
    assert cut["total"] == cut["passed"] + cut["failed"]
    assert cut["failed_names"][0].endswith("(did not finish)")


def test_staging_is_idempotent_and_keeps_out_of_foreign_folders(run, tmp_path):
    first = json.loads((run["tmp"] / "bundle" / "bundle.json").read_text())
    again = _stage(run["tmp"] / "bundle")
    assert again.returncode == 0, again.stderr
    second = json.loads((run["tmp"] / "bundle" / "bundle.json").read_text())
    assert sorted(os.listdir(run["tmp"] / "bundle")) == ["bundle.json", "bundle.tar.gz"]
    for key in ("libraries", "binaries", "plan", "left_to_device"):
        assert first[key] == second[key]
    (tmp_path / "notes.txt").write_text("mine")
    refused = _stage(tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"error: {tmp_path}: holds ['notes.txt'], not a bundle folder; give another --out"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_group_cut_short_keeps_the_nets_timed(run, tmp_path):
    folder = tmp_path / "depthwise_64"
    shutil.copytree(os.path.join(run["results"], "nets", "depthwise_64"), folder)
    whole = gpu_report.depthwise_markdown(str(folder))
    index = json.loads((folder / "cases.json").read_text())
    last = list(index)[-1]  # the budget ran out before the last net
    os.remove(folder / f"{last}.log")
    cut = gpu_report.depthwise_markdown(str(folder))
    shape = index[last]["case"].split(" ", 1)[1].split(" (")[0]
    assert f"| {shape} |" in whole and f"| {shape} |" not in cut
    assert cut.endswith(f"Partial: {len(index) - 1} of {len(index)} nets timed.\n")
    assert len(cut.splitlines()) == len(whole.splitlines()) + 1  # one row less, two lines more


def test_plan_steps_take_stock_and_tf32_once_each():
    step = gpu_bundle.parse_step("bench:fassst_416_coco+tf32+stock")
    assert step == ("bench", "fassst_416_coco", True, True)
    assert gpu_bundle.group_dir(step) == "bench_fassst_416_coco_tf32"
    assert gpu_bundle.step_env(step) == "FASSST_GPU_TF32=1"
    plain = gpu_bundle.parse_step("bench:fassst_416_coco")
    assert gpu_bundle.group_dir(plain) == "bench_fassst_416_coco" and gpu_bundle.step_env(plain) == ""
    for bad in ("bench:fassst_416_coco+fast", "bench:fassst_416_coco+stock+stock", "bench:+tf32"):
        with pytest.raises(InputError, match="may follow the config"):
            gpu_bundle.parse_step(bad)


def test_tail_cases_pair_each_shape_with_caffes_per_roi_loop():
    cases = tail_cases.cases(load_config("fassst_cpu_sample"))
    assert cases and len(cases) % 2 == 0
    for (name, build, _), (per_name, per_build, _) in zip(cases[::2], cases[1::2]):
        assert per_name == name + tail_cases.PER_IMAGE
        ours, caffes = build(), per_build()
        conv, per_roi = ours.layer[-1].convolution_param, caffes.layer[-1].convolution_param
        assert conv.engine == 0 and per_roi.engine == 1  # DEFAULT (the batched hook) vs CAFFE
        per_roi.ClearField("engine")
        assert conv == per_roi and ours.layer[0] == caffes.layer[0]  # the same layer otherwise
