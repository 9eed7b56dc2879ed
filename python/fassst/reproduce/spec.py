"""The paper's tables as data (tables/table<N>.json), read and checked into small frozen records.

A table is rows x columns. A row names the cells it needs ({slot: cell}) and the paper's values
for it ({column key: {"value", "source" | "derived"}}; a column the row does not give is a cell
lost in our text of the paper). A column reads one metric ("segm/AP", "speed/forward_fps", ...)
from the cell in one slot of every row. A cell is a base config + overrides, a data set and its
initial weights, given inline or by the name of a shared cell (tables/cells.json).
"""
import dataclasses
import json
import os
from typing import Optional, Tuple

from fassst.errors import InputError, read_json

TABLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tables")
TABLE_NUMBERS = tuple(range(1, 10))
DATA_SETS = ("coco", "cityscapes")
METRIC_ROOTS = ("segm", "bbox", "cityscapes", "speed", "cost")


class SpecError(InputError):
    """A table or cell file is malformed; the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class CellSpec:
    base: str                 # config name (python/fassst/configs)
    data: str                 # coco | cityscapes
    init: str                 # "imagenet", or the name of a shared cell whose weights start it
    overrides: str            # JSON text of the overrides (hashable; dict via .overrides_dict)
    smoke_overrides: str = "{}"
    note: str = ""
    name: str = ""            # the shared cell's name, if it is one

    @property
    def overrides_dict(self):
        return json.loads(self.overrides)

    @property
    def smoke_overrides_dict(self):
        return json.loads(self.smoke_overrides)


@dataclasses.dataclass(frozen=True)
class Column:
    key: str
    label: str
    cell: str                 # the row slot it reads
    metric: str               # "/" path into a cell's result
    paper: bool = True        # False: the paper has no such column (ours only)

    @property
    def is_speed(self):
        return self.metric.startswith("speed/")


@dataclasses.dataclass(frozen=True)
class PaperValue:
    value: float
    source: str = ""          # a quote of the paper's text stating it
    derived: str = ""         # how it follows from the text, when the text does not state it


@dataclasses.dataclass(frozen=True)
class Row:
    label: str
    cells: Tuple[Tuple[str, CellSpec], ...]
    paper: Tuple[Tuple[str, PaperValue], ...]

    def cell(self, slot) -> Optional[CellSpec]:
        return dict(self.cells).get(slot)

    def paper_value(self, key) -> Optional[PaperValue]:
        return dict(self.paper).get(key)


@dataclasses.dataclass(frozen=True)
class Table:
    number: int
    title: str
    section: str
    row_header: str
    columns: Tuple[Column, ...]
    rows: Tuple[Row, ...]
    split_note: str = ""
    paper_hardware: str = ""
    notes: Tuple[str, ...] = ()
    test_dev_required: bool = False
    path: str = ""


def _keys(raw, where, required, optional=()):
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: must be a JSON object, got {raw!r}")
    missing = [k for k in required if k not in raw]
    unknown = sorted(set(raw) - set(required) - set(optional))
    if missing:
        raise SpecError(f"{where}: missing key(s) {missing}")
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; known: {sorted(required + optional)}")


_CELL_KEYS = (("base", "data", "init"), ("overrides", "smoke_overrides", "note"))


def _cell(raw, where, shared, name=""):
    """A CellSpec from an inline cell, a shared cell's name, or {"like": NAME, "overrides"}."""
    if isinstance(raw, str):
        if raw not in shared:
            raise SpecError(f"{where}: no shared cell {raw!r}; known: {sorted(shared)}")
        return shared[raw]
    if isinstance(raw, dict) and "like" in raw:
        _keys(raw, where, ("like",), ("overrides", "note"))
        like = _cell(raw["like"], where, shared)
        merged = merge_overrides(like.overrides_dict, _overrides(raw.get("overrides", {}), where))
        # the shared cell's note describes it, not this variant of it
        return dataclasses.replace(like, overrides=_dump(merged), note=raw.get("note", ""), name="")
    _keys(raw, where, *_CELL_KEYS)
    if raw["data"] not in DATA_SETS:
        raise SpecError(f"{where}: data must be one of {DATA_SETS}, got {raw['data']!r}")
    init = raw["init"]
    if isinstance(init, dict):
        _keys(init, where + " init", ("cell",))
        init = init["cell"]
        if init not in shared and init != name:
            raise SpecError(f"{where}: init cell {init!r} is not a shared cell; known: {sorted(shared)}")
    elif init != "imagenet":
        raise SpecError(f"{where}: init must be \"imagenet\" or {{\"cell\": NAME}}, got {init!r}")
    return CellSpec(base=raw["base"], data=raw["data"], init=init,
                    overrides=_dump(_overrides(raw.get("overrides", {}), where)),
                    smoke_overrides=_dump(_overrides(raw.get("smoke_overrides", {}), where)),
                    note=raw.get("note", ""), name=name)


def _overrides(raw, where):
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: overrides must be a JSON object, got {raw!r}")
    return raw


def _dump(d):
    return json.dumps(d, sort_keys=True)


def merge_overrides(base, extra):
    """extra over base; a dict value (the solver) merges key by key instead of replacing."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge_overrides(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_shared_cells(path=None):
    path = path or os.path.join(TABLES_DIR, "cells.json")
    doc = read_json(path, "cells file")
    _keys(doc, path, ("cells",), ("about",))
    raw = doc["cells"]
    names = set(raw)
    shared = {}
    # Shared cells may start from each other (init {"cell": ...}); names are checked, not order.
    placeholder = {n: None for n in names}
    for name, spec in raw.items():
        shared[name] = _cell(spec, f"{path}: cell {name}", placeholder, name=name)
    return shared


def _paper(raw, where, keys):
    out = []
    for key, v in raw.items():
        if key not in keys:
            raise SpecError(f"{where}: paper value for unknown column {key!r}; columns: {sorted(keys)}")
        _keys(v, f"{where} paper {key}", ("value",), ("source", "derived"))
        if not isinstance(v["value"], (int, float)) or isinstance(v["value"], bool):
            raise SpecError(f"{where} paper {key}: value must be a number, got {v['value']!r}")
        if bool(v.get("source")) == bool(v.get("derived")):
            raise SpecError(f"{where} paper {key}: give either 'source' (the text states it) or "
                            f"'derived' (how it follows from the text)")
        out.append((key, PaperValue(float(v["value"]), v.get("source", ""), v.get("derived", ""))))
    return tuple(out)


def table_path(number):
    return os.path.join(TABLES_DIR, f"table{number}.json")


def load_table(number_or_path, shared=None):
    """The Table of tables/table<N>.json (or a path); SpecError names what is wrong."""
    if isinstance(number_or_path, int):
        if number_or_path not in TABLE_NUMBERS:
            raise SpecError(f"table {number_or_path}: the paper has Tables 1-9")
        path = table_path(number_or_path)
    else:
        path = number_or_path
    shared = load_shared_cells() if shared is None else shared
    doc = read_json(path, "table file")
    _keys(doc, path, ("table", "title", "section", "row_header", "columns", "rows"),
          ("split_note", "paper_hardware", "notes", "test_dev_required"))
    columns = []
    for i, c in enumerate(doc["columns"]):
        _keys(c, f"{path}: column {i}", ("key", "label", "cell", "metric"), ("paper",))
        if c["metric"].split("/")[0] not in METRIC_ROOTS:
            raise SpecError(f"{path}: column {c['key']}: metric {c['metric']!r} must start with "
                            f"one of {METRIC_ROOTS}")
        columns.append(Column(c["key"], c["label"], c["cell"], c["metric"], c.get("paper", True)))
    keys = {c.key for c in columns}
    if len(keys) != len(columns):
        raise SpecError(f"{path}: column keys repeat")
    rows = []
    for i, r in enumerate(doc["rows"]):
        where = f"{path}: row {i} ({r.get('label', '?')})"
        _keys(r, where, ("label", "cells", "paper"))
        cells = tuple((slot, _cell(spec, f"{where} cell {slot}", shared))
                      for slot, spec in sorted(r["cells"].items()))
        rows.append(Row(r["label"], cells, _paper(r["paper"], where, keys)))
    slots = {c.cell for c in columns}
    for row in rows:
        extra = {s for s, _ in row.cells} - slots
        if extra:
            raise SpecError(f"{path}: row {row.label!r} has cells {sorted(extra)} no column reads")
    return Table(number=doc["table"], title=doc["title"], section=doc["section"],
                 row_header=doc["row_header"], columns=tuple(columns), rows=tuple(rows),
                 split_note=doc.get("split_note", ""), paper_hardware=doc.get("paper_hardware", ""),
                 notes=tuple(doc.get("notes", ())), test_dev_required=doc.get("test_dev_required", False),
                 path=path)
