"""A reproduced table as markdown (results/table<N>.md) and json: the paper's number beside ours
in every column, the hardware of every speed figure, and the cells with their commands.

Paper cells: a number its text states; "(d)" a number derived from its text (how, below the
table); "-" a cell lost in our text of the paper (its tables' cells did not survive the text
extraction). Ours: "n/a" where a metric is undefined (no ground truth of that kind).
"""
import json
import math

from fassst.evaluation.reproduction import lookup
from fassst.reproduce.paths import rel

SMOKE_BANNER = (
    "**Smoke run: these numbers are not results.** Every cell below trained {iters} iterations "
    "on the sample data set ({sample}), at a reduced size ({shrink}), on the machine named under "
    "the table, and was scored on the photos it trained on. The run shows that each cell's "
    "training, evaluation, test-dev submission, speed benchmark and cost count work end to end; "
    "its numbers say nothing about the paper's. `scripts/reproduce.py --table {n} --data-root DIR` "
    "runs the real cells (docs/REPRODUCE.md).")


def _fmt(metric, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    root = metric.split("/")[0]
    return f"{value:.2f}" if root in ("speed", "cost") else f"{value:.1f}"


def cell_view(result):
    """The "/" paths columns read: metrics at the top (segm/, bbox/, cityscapes/), speed/, cost/."""
    return dict(result["metrics"], speed=result["speed"], cost=result["cost"])


def table_values(table, placement, results):
    """[{label, paper: {key: value|None}, ours: {key: value|None}, cells: {slot: id}}] per row."""
    rows = []
    for i, row in enumerate(table.rows):
        ours, cells = {}, {}
        for col in table.columns:
            cell = placement.get((i, col.cell))
            if cell is None:
                continue
            cells[col.cell] = cell.id
            ours[col.key] = lookup(cell_view(results[cell.id]), col.metric)
        paper = {c.key: (row.paper_value(c.key).value if row.paper_value(c.key) else None)
                 for c in table.columns if c.paper}
        rows.append(dict(label=row.label, paper=paper, ours=ours, cells=cells))
    return rows


def _hardware_marks(table, placement, results):
    """{hardware description: "h1", ...} in order of first use by a speed column."""
    marks = {}
    for i, _ in enumerate(table.rows):
        for col in table.columns:
            cell = placement.get((i, col.cell))
            if col.is_speed and cell is not None:
                marks.setdefault(_hardware_text(results[cell.id]["speed"]), f"h{len(marks) + 1}")
    return marks


def _hardware_text(s):
    """The machine and the method of a speed figure (per-cell load and ROI count: cells table)."""
    return (f"{s['hardware']}; {s['deploy']} deploy net, batch 1, median of {s['repeats']} after "
            f"{s['warmup']} warm-up, every one of the n slots through the mask tail; FPS of the "
            f"forward pass unless the column says end to end (read, letterbox, forward, decode, "
            f"paste the masks)")


def render(table, placement, results, cells, smoke, smoke_info=None):
    """The markdown text. placement: {(row index, slot): Cell}; results: {cell id: result};
    cells: the planned cells in run order."""
    marks = _hardware_marks(table, placement, results)
    lines = [f"# Table {table.number} of the paper: {table.title}", ""]
    if smoke:
        lines += [SMOKE_BANNER.format(n=table.number, **smoke_info), ""]
    else:
        lines += [f"Measured here by `scripts/reproduce.py --table {table.number}` (cells and "
                  f"commands below); the paper's numbers beside ours come from its text (section "
                  f"{table.section}).", ""]
    head = [table.row_header]
    for c in table.columns:
        head += ([f"{c.label}: paper"] if c.paper else []) + [f"{c.label}: ours"]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    derived, sources = [], []
    for i, row in enumerate(table.rows):
        out = [row.label]
        for c in table.columns:
            if c.paper:
                pv = row.paper_value(c.key)
                if pv is None:
                    out.append("-")
                else:
                    text = f"{pv.value:g}"  # as the paper gives it
                    if pv.derived:
                        text += " (d)"
                        derived.append(f"{row.label}, {c.label}: {pv.value:g} = {pv.derived}")
                    else:
                        sources.append(f"{row.label}, {c.label}: {pv.source}")
                    out.append(text)
            cell = placement.get((i, c.cell))
            if cell is None:
                out.append("not run")
                continue
            res = results[cell.id]
            text = _fmt(c.metric, lookup(cell_view(res), c.metric))
            if c.is_speed:
                text += f" [{marks[_hardware_text(res['speed'])]}]"
            out.append(text)
        lines.append("| " + " | ".join(out) + " |")
    lines += ["", "Paper columns: a number its text states; (d): derived from its text (below); "
              "-: the cell is lost in our text of the paper (the tables did not survive the text "
              "extraction), never filled in here."]
    if table.paper_hardware:
        lines.append(f"The paper's speed figures: {table.paper_hardware}. FPS compare only on the "
                     f"same hardware.")
    if table.split_note:
        lines.append(("In a full run: " if smoke else "") + table.split_note
                     + (" Here: the sample data standing in (above)." if smoke else ""))
    if sources:
        lines += ["", "Stated in the paper's text:", ""] + [f"- {s}" for s in sources]
    if derived:
        lines += ["", "Derived from the paper's text:", ""] + [f"- {s}" for s in derived]
    if marks:
        lines += ["", "Hardware of our speed figures:", ""]
        lines += [f"- [{m}] {text}" for text, m in marks.items()]
    lines += _cells_section(table, placement, results, cells)
    if table.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in table.notes]
    return "\n".join(lines) + "\n"


def _cells_section(table, placement, results, cells):
    rows_of = {}
    for (i, _), cell in placement.items():
        rows_of.setdefault(cell.id, []).append(table.rows[i].label)
    lines = ["", "Cells. A cell shared by rows or tables ran once. config: the base config and the "
             "cell's own overrides; the whole config it ran is its config.json (named in its "
             "commands). Train wall includes set-up and precise BN, so per iteration it overstates "
             "a short run's step time.", "",
             "| cell | rows | config | data | init | iterations | train wall | wall / iteration "
             "| load average at the speed benchmark |",
             "|---|---|---|---|---|---:|---:|---:|---:|"]
    for cell in cells:
        r = results[cell.id]
        spec = dict(cell.spec.overrides_dict, **(cell.spec.smoke_overrides_dict if cell.smoke else {}))
        changes = ", ".join(f"{k} {json.dumps(v)}" for k, v in sorted(spec.items())) or "as is"
        load = (r["speed"].get("load_average") or [None])[0]
        init = {"imagenet": "ImageNet backbone", "none": "fillers (no pretrained weights)"}.get(
            cell.init, f"cell {cell.init}" if cell.init_cell else cell.init)
        lines.append(f"| `{cell.id}` | {'; '.join(rows_of.get(cell.id, ['(init of another cell)']))} | "
                     f"{cell.spec.base}: {changes} | {cell.data} | {init} | {r['train']['iterations']} | "
                     f"{r['train']['wall_s']:.0f} s | {r['train']['s_per_iter']:.2f} s | "
                     f"{'-' if load is None else f'{load:.1f}'} |")
    lines += ["", "What produced each cell, and the same steps as stand-alone commands:", ""]
    for cell in cells:
        r = results[cell.id]
        lines.append(f"- `{cell.id}`" + (f" ({cell.spec.note})" if cell.spec.note else "") + ":")
        lines.append(f"  - produced by `{r['produced_by']}` (git {_short_git(r['git'])})")
        for step in ("init", "train", "eval", "speed", "cost"):
            if step in r["commands"]:
                cmd = r["commands"][step]
                lines.append(f"  - {step}: " + (cmd if step == "init" else f"`{cmd}`"))
        if r.get("test_dev"):
            t = r["test_dev"]
            lines.append(f"  - COCO test-dev: `{rel(t['zip'])}` ({t['images']} images, {t['detections']} "
                         f"detections): upload it to the COCO evaluation server (docs/REPRODUCE.md)")
    return lines


def _short_git(rev):
    """"<10 hex> (with uncommitted changes)" from git_revision()'s full form."""
    head, _, rest = rev.partition(" ")
    return head[:10] + (f" {rest}" if rest else "")
