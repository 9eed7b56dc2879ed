"""From a table to the cells to run: each cell spec resolved to a frozen config, a schedule and
its initial weights, identified by a digest of all of them, dependencies first.

Two rows (of one table or of several) whose cells resolve alike share one run: Table 5's
416 / depth-5 row, Table 6's MobileNet row and Table 9's RFF row are all Table 1's cell.
"""
import dataclasses
import hashlib
import json
import os
from typing import Tuple

from fassst.config import CONFIG_DIR, FassstConfig, load_config, to_dict
from fassst.errors import InputError, read_json
from fassst.net.geometry import iam_plan
from fassst.reproduce.spec import TABLES_DIR, CellSpec, SpecError, load_shared_cells, merge_overrides

RUN_SETTINGS = os.path.join(TABLES_DIR, "run_settings.json")


@dataclasses.dataclass(frozen=True)
class Cell:
    id: str
    spec: CellSpec
    cfg: FassstConfig
    init: str                  # "imagenet", "none" (fillers), a .caffemodel path, or a cell id
    init_cell: str             # the shared cell's name when init is a cell id, else ""
    max_iter: int
    seed: int
    smoke: bool
    overrides: Tuple[Tuple[str, str], ...]  # what differs from the base config, for the table

    @property
    def data(self):
        return self.spec.data

    @property
    def depends_on(self):
        return self.init if self.init_cell else None


def run_settings(smoke, path=RUN_SETTINGS):
    doc = read_json(path, "run settings")
    return doc["smoke" if smoke else "full"]


def resolve_config(spec, num_classes, settings, smoke):
    """The cell's FassstConfig: base config, the cell's overrides, the classes of its data and,
    in smoke mode, the smoke shrink (sizes mapped, small widths, CPU solver)."""
    path = os.path.join(CONFIG_DIR, spec.base + ".json")
    if not os.path.isfile(path):
        raise SpecError(f"cell {spec.name or spec.base}: no config {spec.base!r} in {CONFIG_DIR}")
    base = read_json(path, "config")
    overrides = merge_overrides(spec.overrides_dict, {"num_classes": num_classes})
    if smoke:
        full = load_config(spec.base, **_with_solver(base, overrides))
        sizes = settings["input_size"]
        if str(full.input_size) not in sizes:
            raise SpecError(f"{RUN_SETTINGS}: smoke input_size has no size for {full.input_size}")
        overrides = merge_overrides(overrides, settings["overrides"])
        overrides = merge_overrides(overrides, spec.smoke_overrides_dict)
        overrides["input_size"] = sizes[str(full.input_size)]
    cfg = load_config(spec.base, **_with_solver(base, overrides))
    try:
        iam_plan(cfg.input_size, cfg.head_depth, cfg.num_slots, cfg.backbone)
    except ValueError as e:
        raise SpecError(f"cell {spec.base} {spec.overrides}: {e}") from None
    return cfg


def _with_solver(base, overrides):
    """load_config replaces a nested solver; merge it with the base file's first."""
    if "solver" in overrides:
        return dict(overrides, solver=merge_overrides(base.get("solver", {}), overrides["solver"]))
    return overrides


def _changed(cfg, base_name):
    """(key, value) of every field where cfg differs from its base config file, for display."""
    base = to_dict(load_config(base_name, num_classes=cfg.num_classes))
    now = to_dict(cfg)
    out = []
    for k in sorted(now):
        if k == "solver":
            out += [(f"solver.{s}", json.dumps(v)) for s, v in sorted(now[k].items())
                    if base[k].get(s) != v]
        elif base.get(k) != now[k]:
            out.append((k, json.dumps(now[k])))
    return tuple(out)


def cell_id(cfg, data, init, max_iter, seed):
    key = json.dumps(dict(config=to_dict(cfg), data=data, init=init, max_iter=max_iter, seed=seed),
                     sort_keys=True)
    return f"{cfg.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


class Planner:
    """Resolves cell specs into Cells, shared cells once; `cells` is in run order."""

    def __init__(self, num_classes_of, smoke, seed=0, r50_weights=None, shared=None, settings=None):
        self.num_classes_of = num_classes_of
        self.smoke, self.seed, self.r50_weights = smoke, seed, r50_weights
        self.shared = load_shared_cells() if shared is None else shared
        self.settings = run_settings(smoke) if settings is None else settings
        self.cells = []
        self._by_spec = {}

    def resolve(self, spec):
        if spec in self._by_spec:
            return self._by_spec[spec]
        init_cell = "" if spec.init == "imagenet" else spec.init
        init = self.resolve(self.shared[init_cell]).id if init_cell else None  # run order: it first
        cfg = resolve_config(spec, self.num_classes_of(spec.data), self.settings, self.smoke)
        if not init_cell:
            init = self._imagenet_init(spec, cfg)
        max_iter = self.settings["iterations"] or cfg.solver.max_iter
        cell = Cell(id=cell_id(cfg, spec.data, init, max_iter, self.seed), spec=spec, cfg=cfg,
                    init=init, init_cell=init_cell, max_iter=max_iter, seed=self.seed,
                    smoke=self.smoke, overrides=_changed(cfg, spec.base))
        if cell.id not in {c.id for c in self.cells}:
            self.cells.append(cell)
        self._by_spec[spec] = cell
        return cell

    def _imagenet_init(self, spec, cfg):
        if cfg.backbone == "mobilenet_v2":
            return "imagenet"
        if self.smoke:
            return "none"  # no ImageNet weights for this backbone here; the smoke trains from fillers
        if not self.r50_weights:
            raise InputError(f"cell {spec.base}: the {cfg.backbone} backbone has no ImageNet weights "
                             f"here; pass --r50-weights W.caffemodel (its layer names: "
                             f"docs/DESIGN.md, 'Backbone option: ResNet-50-FPN')")
        if not os.path.isfile(self.r50_weights):
            raise InputError(f"{self.r50_weights}: no such caffemodel (--r50-weights)")
        return os.path.abspath(self.r50_weights)


def plan_table(table, planner):
    """{(row index, slot): Cell} for every cell of the table; planner.cells holds the run order
    (a cell after the cell whose weights start it)."""
    return {(i, slot): planner.resolve(spec)
            for i, row in enumerate(table.rows) for slot, spec in row.cells}
