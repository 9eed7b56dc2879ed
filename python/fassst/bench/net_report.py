"""The whole-net benchmark's markdown (scripts/bench.py): its record (net_bench.benchmark) as the
paper's Table 2/4 shape, the parts and the top layers; the Python side's profile; and the same
table read back from the `caffe time` logs of the nets net_bench.export wrote."""
import os

from fassst.bench import caffe_time, python_side
from fassst.bench.net_bench import PARTS, part_of, read_param
from fassst.errors import InputError, MissingFileError, read_json


def profile_markdown(rec):
    """The Python side's profile (net_bench.profile_python) as markdown."""
    title = (f"{rec['config']} (input {rec['input_size']}; weights {rec['weights']}"
             f"{', all slots' if rec['all_slots'] else ''}); git {rec['git']}, {rec['date']}, 1-min "
             f"load average {' / '.join(_fmt(x, '.1f') for x in rec['load_average_1min'])}")
    return python_side.markdown(rec, title)


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def markdown(rec):
    """The record as markdown: the Table 2/4-shaped table, parts, top layers."""
    lines = [f"### {rec['config']}: input {rec['input_size']}, n {rec['num_slots']}, "
             f"C {rec['num_classes']}", "",
             f"{rec['hardware']}; weights {rec['weights']}"
             f"{', all n slots through the tail' if rec['all_slots'] else ''}; batch 1, median "
             f"of {rec['repeats']} after {rec['warmup']} warm-up, the variants taking turns; git "
             f"{rec['git']}, {rec['date']}; 1-min load average before and after "
             f"{' / '.join(_fmt(x, '.1f') for x in rec['load_average_1min'])} (other processes "
             f"share the machine). numpy sgemm in the same run: "
             f"{rec['sgemm_gmacs_per_s']:.0f} G multiply-adds/s before, "
             f"{rec['sgemm_after_gmacs_per_s']:.0f} after.", ""]
    paper = rec.get("paper")
    title = (f"Shaped like the paper's {paper['table']}" if paper else
             "The paper has no row for this config (not one of its variants)")
    lines += [f"{title}. FPS are only comparable within one hardware: the paper's rows are GPU "
              f"figures, ours name their own hardware.", "",
              "| method | hardware | input | FPS forward | FPS end to end | G multiply-adds "
              "| params (M) | caffemodel MB | % of sgemm |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in (paper["rows"] if paper else []):
        lines.append(f"| {r['method']} | {r['hardware']} | {r.get('input', '-')} | "
                     f"{_fmt(r.get('fps'), '.1f')} (kind not stated) | - | "
                     f"{_fmt(r.get('gmacs'), '.1f')} | - | {_fmt(r.get('mb'), '.1f')} | - |")
    for r in rec["runs"]:
        frac = r.get("fraction_of_sgemm")
        lines.append(f"| ours, {r['label']} deploy, {r['rois']} ROIs | {rec['hardware']} | "
                     f"{rec['input_size']} | {r['forward_fps']:.2f} ({r['forward_ms']:.0f} ms; min "
                     f"{r['forward_min_ms']:.0f}) | {r['e2e_fps']:.2f} ({r['e2e_ms']:.0f} ms; min "
                     f"{r['e2e_min_ms']:.0f}) | {r['gmacs']:.2f} | "
                     f"{r['params'] / 1e6:.2f} | {r['caffemodel_mb']:.2f} | "
                     f"{'-' if frac is None else f'{100 * frac:.0f}%'} |")
    runs = rec["runs"]
    lines += ["", "Parts (each layer timed alone; ms, G multiply-adds, G multiply-adds/s):", "",
              "| part | " + " | ".join(f"{r['label']} ms" for r in runs) + " | G multiply-adds | "
              + " | ".join(f"{r['label']} G/s" for r in runs) + " |",
              "|---|" + "---:|" * (2 * len(runs) + 1)]
    for part in PARTS:
        cells = [r["parts"].get(part) for r in runs]
        if not any(cells):
            continue
        gm = next(c["gmacs"] for c in cells if c)
        lines.append(f"| {part} | " + " | ".join(_fmt(c and c["ms"], ".1f") for c in cells)
                     + f" | {gm:.2f} | " + " | ".join(
                         _fmt(c and c["gmacs_per_s"] if c and c["gmacs"] else None, ".1f")
                         for c in cells) + " |")
    lines.append("| sum of layers | " + " | ".join(f"{r['layer_sum_ms']:.1f}" for r in runs)
                 + " | | " + " | ".join("" for _ in runs) + " |")
    lines += ["", "Python side of end to end (read, letterbox, decode, paste masks at photo size, "
              "RLE; median per photo): " + ", ".join(
                  f"{r['label']} {r['python_side_ms']:.1f} ms" for r in runs)]
    for r in runs:
        lines += ["", f"Top layers, {r['label']} deploy: " + ", ".join(
            f"{t['name']} ({t['type']}) {t['ms']:.1f} ms" for t in r["top_layers"][:8])]
    return "\n".join(lines) + "\n"


def from_logs(log_dir, hardware_name):
    """Markdown: forward ms, FPS and ms per part of each exported net from its `caffe time` log
    (the mean over its iterations, as the tool reports)."""
    index = read_json(os.path.join(log_dir, "nets.json"), "nets.json of net_bench.export")
    env = f", {index['env']}" if index.get("env") else ""
    lines = [f"### {index['config']} through `caffe time` ({hardware_name}{env}; input "
             f"{index['input_size']}, {index['num_slots']} random ROIs through the tail, mean of "
             f"the tool's iterations)", "",
             "| net | forward ms | FPS | " + " | ".join(p for p in PARTS) + " |",
             "|---|---:|---:|" + "---:|" * len(PARTS)]
    for name, meta in index["nets"].items():
        log = os.path.join(log_dir, name + ".log")
        if not os.path.exists(log):
            raise MissingFileError(f"{log}: missing; run `caffe time -model "
                                   f"{log_dir}/{name}.prototxt -phase TEST ... 2> {log}`")
        with open(log) as f:
            text = f.read()
        try:
            total = caffe_time.forward_pass_ms(text)
        except InputError as e:
            raise InputError(f"{log}: {e}") from None
        times = caffe_time.parse_log(text)
        parts = {p: 0.0 for p in PARTS}
        for layer in read_param(os.path.join(log_dir, name + ".prototxt")).layer:
            if layer.name in times:
                part = "other" if layer.type == "DummyData" else part_of(layer)
                parts[part] += times[layer.name][0]
        lines.append(f"| {meta['label']} | {total:.2f} | {1e3 / total:.1f} | "
                     + " | ".join(f"{parts[p]:.2f}" for p in PARTS) + " |")
    return "\n".join(lines) + "\n"
