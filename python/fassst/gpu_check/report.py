"""The GPU check's report (scripts/gpu_report.py): what scripts/gpu_check.sh brought back, as
markdown. Reads OUT/logs.tar.gz (and summary.txt in it) with the --from-logs readers of
bench.py, bench_depthwise.py and bench_layers.py, the gtest XML (its log when the XML is missing:
a run cut short), and cudnn_probe's JSON joined to Caffe's times of the same shapes. A step that
did not run leaves its section saying so instead of stopping the report.
"""
import json
import os
import re
import shutil
import tarfile
import xml.etree.ElementTree as ET

from fassst.bench import caffe_time, net_report
from fassst.errors import InputError, MissingFileError
from fassst.gpu_check.bundle import check_settings

_OK = re.compile(r"^\[       OK \] (\S+) \(\d+ ms\)", re.M)
_FAILED = re.compile(r"^\[  FAILED  \] (\S+?)(?:, where .*)? \(\d+ ms\)", re.M)
_STARTED = re.compile(r"^\[ RUN      \] (\S+)", re.M)


def unpack(src, dest):
    """Extracts src (a folder holding logs.tar.gz, or the tarball) into dest (replaced);
    returns the results folder."""
    tar = os.path.join(src, "logs.tar.gz") if os.path.isdir(src) else src
    if not os.path.isfile(tar):
        raise MissingFileError(f"{tar}: no such file (scripts/gpu_check.sh writes it to its --out)")
    if os.path.isdir(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    try:
        with tarfile.open(tar) as t:
            names = t.getnames()
            if not all(n == "results" or n.startswith("results/") for n in names):
                raise InputError(f"{tar}: not a gpu_check.sh archive (members outside results/)")
            t.extractall(dest, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    except tarfile.TarError as e:
        raise InputError(f"{tar}: unreadable archive ({e})") from None
    return os.path.join(dest, "results")


def _gtest_run(xml, log):
    """(total, passed, failed names, seconds or None, complete) of one fassst_layer_tests run."""
    if os.path.isfile(xml):
        root = ET.parse(xml).getroot()
        ran = [c for c in root.iter("testcase") if c.get("status", "run") == "run"]
        failed = [f"{c.get('classname')}.{c.get('name')}" for c in ran
                  if c.find("failure") is not None or c.find("error") is not None]
        return len(ran), len(ran) - len(failed), failed, float(root.get("time", 0)), True
    with open(log, errors="replace") as f:
        text = f.read()
    ok, failed, started = _OK.findall(text), _FAILED.findall(text), _STARTED.findall(text)
    unfinished = [t for t in started if t not in ok and t not in failed]
    failed = failed + [f"{t} (did not finish)" for t in unfinished]
    return len(ok) + len(failed), len(ok), failed, None, False


def listed_tests(text):
    """Case.Test names from `--gtest_list_tests` output (the GPU build's main prints device lines
    before the list: they are neither a case line nor an indented test line)."""
    names, case = [], None
    for line in text.splitlines():
        if re.fullmatch(r"[A-Za-z_][\w/]*\.", line.strip()) and not line.startswith(" "):
            case = line.strip()
        elif case and line.startswith("  ") and line.strip():
            names.append(case + line.split()[0])
    return names


def gtest_summary(results):
    """dict(source, runs, total, passed, failed, failed_names, seconds, complete) of the layer
    tests over gpu_check.sh's runs (gtest.*, then gtest.2.* ... after an abort); None when they
    did not run. complete: every run left its XML (an aborted run leaves only its log)."""
    runs = []
    for k in range(1, 100):
        sfx = "" if k == 1 else f".{k}"
        xml, log = (os.path.join(results, f"gtest{sfx}.{ext}") for ext in ("xml", "log"))
        if not (os.path.isfile(xml) or os.path.isfile(log)):
            break
        runs.append(_gtest_run(xml, log))
    if not runs:
        return None
    complete = all(r[4] for r in runs)
    secs = [r[3] for r in runs]
    listed = None
    if os.path.isfile(os.path.join(results, "gtest_list.txt")):
        with open(os.path.join(results, "gtest_list.txt"), errors="replace") as f:
            listed = len(listed_tests(f.read())) or None
    return dict(source=f"{len(runs)} run(s); " + ("gtest XML" if complete else
                                                  "gtest XML, or the log of a run cut short"),
                runs=len(runs), total=sum(r[0] for r in runs), passed=sum(r[1] for r in runs),
                failed=sum(len(r[2]) for r in runs), failed_names=[n for r in runs for n in r[2]],
                seconds=sum(secs) if None not in secs else None, complete=complete, listed=listed)


def _plan_groups(results):
    with open(os.path.join(results, "plan.txt")) as f:
        return [line.split()[1] for line in f if line.startswith("nets ")]


def _hardware(summary):
    m = re.search(r"^machine: ([^,;]+)", summary, re.M)
    return m.group(1).strip() if m else "unknown"


def net_fps(log_dir):
    """[(config, label, caffe time's forward ms, fassst_time's median ms, fassst_time's check
    against the CPU)] of a bench group's nets with a finished log of either tool (None for what
    is missing); the label names the environment the group was timed with, if any (e.g.
    FASSST_GPU_TF32=1)."""
    with open(os.path.join(log_dir, "nets.json")) as f:
        index = json.load(f)
    env = f", {index['env']}" if index.get("env") else ""
    out = []
    for name, meta in index["nets"].items():
        whole = os.path.join(log_dir, name + ".whole.log")
        times = [_read_log(os.path.join(log_dir, name + ".log"), caffe_time.forward_pass_ms),
                 _read_log(whole, caffe_time.whole_forward_ms)]
        if times != [None, None]:
            out.append((index["config"], meta["label"] + env, *times,
                        _read_log(whole, caffe_time.cpu_check)))
    return out


def _check(check):
    """fassst_time's comparison with the CPU for the table: worst relative difference and its
    blob, and how many blobs were over the tolerance."""
    if check is None:
        return "-"
    verdict = "ok" if check["over"] == 0 else f"**{check['over']} blobs over {check['tolerance']:g}**"
    return f"{check['worst']:.2g} ({check['blob']}): {verdict}"


def _ms(value):
    return "-" if value is None else f"{value:.2f}"


def _read_log(log, parse):
    """parse(log's text), or None when the log is missing or unfinished."""
    if not os.path.isfile(log):
        return None
    with open(log, errors="replace") as f:
        try:
            return parse(f.read())
        except ValueError:
            return None


def _cases(log_dir):
    """{case: (forward ms, backward ms)} of a cases group, or the reason there is none. A group
    the time budget cut short keeps the cases whose logs are whole."""
    try:
        return {name: (f, b) for name, f, b in caffe_time.rows_from_logs(log_dir)}
    except (OSError, ValueError) as e:
        why = str(e)
    try:
        rows = caffe_time.rows_from_logs(log_dir, partial=True)
    except (OSError, ValueError):
        return why
    return {name: (f, b) for name, f, b in rows} or why


def _partial(log_dir, rows):
    with open(os.path.join(log_dir, "cases.json")) as f:
        listed = len(json.load(f))
    return "" if len(rows) == listed else f"\nPartial: {len(rows)} of {listed} nets timed.\n"


def depthwise_markdown(log_dir):
    """bench_depthwise.py's table from `caffe time` logs: grouped Convolution against the
    DepthwiseConvolution layer per shape, and the 17 layers weighted by their counts."""
    rows = _cases(log_dir)
    if isinstance(rows, str):
        return f"not measured: {rows}\n"
    lines = ["| channels x side, stride | layers | stock fwd | depthwise fwd | speedup | stock bwd "
             "| depthwise bwd | speedup |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    total = [0.0] * 4
    for name, (sf, sb) in rows.items():
        if not name.startswith("Convolution "):
            continue
        shape = name[len("Convolution "):]
        if "DepthwiseConvolution " + shape not in rows:
            continue
        df, db = rows["DepthwiseConvolution " + shape]
        count = int(re.search(r"\(x(\d+)\)", shape).group(1))
        for i, v in enumerate((sf, df, sb, db)):
            total[i] += count * v
        lines.append(f"| {shape.split(' (')[0]} | {count} | {sf:.3f} | {df:.3f} | {_x(sf, df)} | "
                     f"{sb:.3f} | {db:.3f} | {_x(sb, db)} |")
    sf, df, sb, db = total
    lines.append(f"| all, weighted | | {sf:.2f} | {df:.2f} | {_x(sf, df)} | {sb:.2f} | {db:.2f} "
                 f"| {_x(sb, db)} |")
    return "\n".join(lines) + "\n" + _partial(log_dir, rows)


def _x(a, b):
    return f"{a / b:.1f}x" if b > 0 else "-"


def cases_markdown(log_dir):
    rows = _cases(log_dir)
    if isinstance(rows, str):
        return f"not measured: {rows}\n"
    return ("| case (caffe time, mean) | forward ms | backward ms |\n|---|---:|---:|\n"
            + "".join(f"| {n} | {f:.3f} | {b:.3f} |\n" for n, (f, b) in rows.items())
            + _partial(log_dir, rows))


def cudnn_markdown(results):
    """Caffe's time of each probe shape (im2col + cuBLAS Convolution; for depthwise shapes also
    the DepthwiseConvolution layer) beside torch's cuDNN FP32 / TF32 and cuDNN-disabled times,
    and per group the forward milliseconds cuDNN FP32 would save, weighted by layer count."""
    probe_path = os.path.join(results, "cudnn_probe.json")
    if not os.path.isfile(probe_path):
        log = os.path.join(results, "cudnn_probe.log")
        why = "the probe did not run"
        if os.path.isfile(log):
            with open(log, errors="replace") as f:
                lines = f.read().strip().splitlines()
            why = lines[-1] if lines else "the probe printed nothing"
        return f"not measured: {why}\n"
    with open(probe_path) as f:
        probe = json.load(f)
    with open(os.path.join(results, "cudnn_shapes.json")) as f:
        shapes = {(s["group"], s["case"]): s for s in json.load(f)}
    caffe = {}
    lines = [f"torch {probe['torch']}, CUDA {probe['cuda']}, cuDNN {probe['cudnn']} on "
             f"{probe['device']}; ms, torch: median of {probe['repeats']}, Caffe: `caffe time` mean.",
             "", "| group | shape | layers | Caffe conv fwd / bwd | our depthwise fwd / bwd | "
             "cuDNN FP32 fwd / bwd | cuDNN TF32 fwd / bwd | torch no cuDNN fwd / bwd | "
             "cuDNN FP32 vs Caffe's best, fwd |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    saved = {}
    for row in probe["rows"]:
        group = row["group"]
        if group not in caffe:
            caffe[group] = _cases(os.path.join(results, "nets", group))
        have = caffe[group] if isinstance(caffe[group], dict) else {}
        shape = shapes[(group, row["case"])]
        conv = have.get(shape["caffe"].get("Convolution"))
        layer = have.get(shape["caffe"].get("DepthwiseConvolution"))
        count = shape["count"]
        t = row["times"]
        best = min((v[0] for v in (conv, layer) if v), default=None)
        lines.append(f"| {group} | {row['case'].split(' (')[0]} | {count} | {_pair(conv)} | "
                     f"{_pair(layer)} | {_pair(t['cudnn_fp32'])} | {_pair(t['cudnn_tf32'])} | "
                     f"{_pair(t['native'])} | {_x(best, t['cudnn_fp32'][0]) if best else '-'} |")
        if best:
            s = saved.setdefault(group, [0.0, 0.0])
            s[0] += count * best
            s[1] += count * t["cudnn_fp32"][0]
    lines.append("")
    lines += [f"- not timed by the probe: {f['group']} {f['case']}: {f['error']}"
              for f in probe.get("failed", [])]
    for group, (ours, cudnn) in saved.items():
        lines.append(f"- {group}: Caffe's best {ours:.2f} ms forward over its layers, cuDNN FP32 "
                     f"{cudnn:.2f} ms: cuDNN would save {ours - cudnn:.2f} ms a forward.")
    return "\n".join(lines) + "\n"


def _pair(v):
    return f"{v[0]:.3f} / {v[1]:.3f}" if v else "-"


def report(src, md_path):
    """Unpacks src next to md_path (md_path without .md) and writes the markdown; returns it."""
    results = unpack(src, os.path.splitext(md_path)[0])
    try:
        with open(os.path.join(results, "summary.txt")) as f:
            summary = f.read()
        groups = _plan_groups(results)
        with open(os.path.join(results, "bundle.json")) as f:
            manifest = json.load(f)
    except OSError as e:
        raise InputError(f"{src}: incomplete archive ({e})") from None
    hardware = _hardware(summary)
    targets = check_settings()["fps_targets"]
    first = summary.splitlines()[0] if summary else ""
    out = [f"# GPU check: {hardware}", "",
           f"`scripts/gpu_check.sh` ({first}); bundle of commit {manifest['commit']} "
           f"({manifest['build_kind']} build {manifest['build']}, staged {manifest['created']}); "
           f"report by `scripts/gpu_report.py`. Raw logs beside this file: "
           f"`{os.path.relpath(results, os.path.dirname(os.path.abspath(md_path)))}/`.", ""]

    out += ["## Layer tests (fassst_layer_tests)", ""]
    gt = gtest_summary(results)
    if gt is None:
        out.append("not run")
    else:
        secs = f" in {gt['seconds']:.0f} s" if gt["seconds"] is not None else ""
        of = f" of {gt['listed']} listed" if gt["listed"] else ""
        out.append(f"{gt['total']}{of} tests ran: **{gt['passed']} passed, {gt['failed']} failed**"
                   f"{secs} ({gt['source']}).")
        out += [f"- failed: {n}" for n in gt["failed_names"]]
    out.append("")

    out += ["## Frame rate against the targets (gpu_check.json, fps_targets)", "",
            "Forward only, batch 1, random weights, every slot through the tail (not end to "
            "end: no letterbox, decode or mask paste). Two timers: `caffe time -phase TEST` "
            "(mean; it synchronises after every layer to time it) and `fassst_time` (median; "
            "one synchronisation per forward, as an application runs the net). FPS from "
            "fassst_time where it ran. vs CPU: fassst_time -check_cpu, every blob of one forward "
            "on the device against the CPU's from the same seed, the worst max |diff| / max |CPU| "
            "and its blob (tolerance 1e-3; 3e-2 with TF32).", "",
            "| config | net | forward ms, caffe time | forward ms, fassst_time | FPS | target FPS "
            "| | vs CPU |", "|---|---|---:|---:|---:|---:|---|---|"]
    fps_rows = []
    for group in groups:
        if group.startswith("bench_"):
            fps_rows += net_fps(os.path.join(results, "nets", group))
    for config, label, layered, whole, check in fps_rows:
        target = targets.get(config)
        fps = 1e3 / (whole if whole is not None else layered)
        verdict = "" if target is None else ("meets it" if fps >= target else
                                             f"short: {fps / target:.2g} of it")
        out.append(f"| {config} | {label} | {_ms(layered)} | {_ms(whole)} | {fps:.1f} | "
                   f"{target or '-'} | {verdict} | {_check(check)} |")
    missing = [c for c in targets if c not in {r[0] for r in fps_rows}]
    if missing:
        out += ["", f"Not measured in this run: {', '.join(missing)}."]
    out.append("")

    for group in groups:
        log_dir = os.path.join(results, "nets", group)
        if group.startswith("bench_"):
            out.append("## Whole net: " + group[len("bench_"):])
            out.append("")
            try:
                out.append(net_report.from_logs(log_dir, hardware))
            except (OSError, ValueError) as e:
                out.append(f"not measured: {e}\n")
        elif group.startswith("depthwise_"):
            out += [f"## Depthwise convolutions at input {group[len('depthwise_'):]}, "
                    f"grouped Convolution vs DepthwiseConvolution (ms, `caffe time` mean)", "",
                    depthwise_markdown(log_dir)]
        elif group.startswith("tail_"):
            out += [f"## Mask tail 3x3 convs, {group[len('tail_'):]} (stock Convolution: the "
                    f"batched GPU path, then Caffe's per-ROI loop)", "",
                    cases_markdown(log_dir)]
        else:
            out += ["## FASSST layers at paper size", "", cases_markdown(log_dir)]

    out += ["## cuDNN against this Caffe's convolutions", "", cudnn_markdown(results)]
    out += ["## Steps", "", "```", summary.rstrip(), "```", ""]
    text = "\n".join(out)
    with open(md_path, "w") as f:
        f.write(text)
    return text
