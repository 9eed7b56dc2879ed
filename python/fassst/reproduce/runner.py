"""One of the paper's tables, end to end (scripts/reproduce.py): plan its cells, check the data
they need, run (or read back) each cell, write results/table<N>.{md,json}."""
import json
import os

from fassst.build_paths import REPO_ROOT
from fassst.errors import InputError
from fassst.reproduce import markdown
from fassst.reproduce.data_root import DataRoot
from fassst.reproduce.paths import rel
from fassst.reproduce.plan import Planner, plan_table, run_settings
from fassst.reproduce.run_cell import RunContext, run_cell
from fassst.reproduce.sample_root import build_sample_root
from fassst.reproduce.spec import load_table

RESULTS_DIR = os.path.join(REPO_ROOT, "results")
SMOKE_MARK = "**Smoke run"


def default_work_dir(smoke):
    """Smoke and full cells never share a folder (a smoke cell is a different config anyway)."""
    return os.path.join(RESULTS_DIR, "reproduce_smoke" if smoke else "reproduce")


def command_line(number, data_root=None, smoke=False, gpu=None, seed=0, r50_weights=None,
                 work_dir=None, results_dir=None):
    parts = ["scripts/reproduce.py", f"--table {number}"]
    if data_root:
        parts.append(f"--data-root {rel(data_root)}")
    if smoke:
        parts.append("--smoke")
    if gpu is not None:
        parts.append(f"--gpu {gpu}")
    if seed:
        parts.append(f"--seed {seed}")
    if r50_weights:
        parts.append(f"--r50-weights {rel(r50_weights)}")
    if work_dir and os.path.abspath(work_dir) != default_work_dir(smoke):
        parts.append(f"--work {rel(work_dir)}")
    if results_dir and os.path.abspath(results_dir) != RESULTS_DIR:
        parts.append(f"--results {rel(results_dir)}")
    return " ".join(parts)


def plan(number, data_root, work_dir, smoke, seed=0, r50_weights=None):
    """(Table, {(row, slot): Cell}, cells in run order, DataRoot); checks every data set the
    cells need (MissingDataError names the first missing folder) before anything runs."""
    table = load_table(number)
    root = DataRoot(data_root, cache_dir=os.path.join(work_dir, "data"))
    classes = {}

    def num_classes_of(data):
        if data not in classes:
            root.check(data, test_dev=table.test_dev_required and data == "coco")
            classes[data] = root.num_classes(data)
        return classes[data]

    planner = Planner(num_classes_of, smoke=smoke, seed=seed, r50_weights=r50_weights)
    placement = plan_table(table, planner)
    return table, placement, planner.cells, root


def reproduce_table(number, data_root=None, smoke=False, gpu=None, seed=0, r50_weights=None,
                    work_dir=None, results_dir=None, quiet=True, log=print):
    """Runs table `number`; returns the markdown path, or None when a run was stopped (run the
    same command again to resume)."""
    work_dir = os.path.abspath(work_dir or default_work_dir(smoke))
    results_dir = os.path.abspath(results_dir or RESULTS_DIR)
    out_md = os.path.join(results_dir, f"table{number}.md")
    if smoke and _is_full_table(out_md):
        raise InputError(f"{out_md}: holds a full run's table; a smoke run does not replace it "
                         f"(pass --results DIR to write the smoke table elsewhere)")
    if data_root is None:
        if not smoke:
            raise InputError("--data-root DIR is required (COCO and Cityscapes, docs/REPRODUCE.md); "
                             "--smoke runs on the sample data instead")
        data_root = build_sample_root(os.path.join(work_dir, "sample_root"))
    table, placement, cells, root = plan(number, data_root, work_dir, smoke, seed, r50_weights)
    settings = run_settings(smoke)
    ctx = RunContext(data_root=root, work_dir=work_dir, settings=settings, gpu=gpu, quiet=quiet,
                     log=log, command=command_line(number, None if smoke else data_root, smoke, gpu,
                                                   seed, r50_weights, work_dir, results_dir))
    log(f"[reproduce] Table {number}: {len(cells)} cell(s) in {rel(work_dir)}/cells")
    results = {}
    for k, cell in enumerate(cells, 1):
        log(f"[reproduce] cell {k}/{len(cells)}: {cell.id}")
        result = run_cell(cell, ctx, results)
        if result is None:
            log("[reproduce] stopped; run the same command again to resume")
            return None
        results[cell.id] = result
    smoke_info = _smoke_info(settings, root) if smoke else None
    text = markdown.render(table, placement, results, cells, smoke, smoke_info)
    os.makedirs(results_dir, exist_ok=True)
    with open(out_md, "w") as f:
        f.write(text)
    with open(os.path.join(results_dir, f"table{number}.json"), "w") as f:
        json.dump(dict(table=number, smoke=smoke, rows=markdown.table_values(table, placement, results),
                       cells={c.id: results[c.id] for c in cells}), f, indent=1)
    log(f"[reproduce] wrote {rel(out_md)} and table{number}.json")
    return out_md


def _is_full_table(path):
    if not os.path.isfile(path):
        return False
    with open(path) as f:
        return SMOKE_MARK not in f.read()


def _smoke_info(settings, root):
    with open(os.path.join(root.root, "sample_root.json")) as f:
        n_city = json.load(f)["cityscapes_images"]
    sizes = ", ".join(f"input {k} -> {v}" for k, v in settings["input_size"].items())
    o = settings["overrides"]
    return dict(iters=settings["iterations"],
                sample=f"14 photos standing in for COCO, {n_city} of them as Cityscapes frames",
                shrink=f"{sizes}; mask and IAM width {o['mask_dim']} and {o['iam_dim']}; "
                       f"{o['tail_convs']} tail conv; batch {o['solver']['batch_size']}; score "
                       f"threshold {o['score_threshold']}")
