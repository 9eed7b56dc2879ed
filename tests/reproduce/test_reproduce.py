"""scripts/reproduce.py: the paper's tables from data.

Planning is checked without any data (which rows share a cell, the configs and schedules the
full runs use, the missing-data errors); the smoke runs of Tables 9, 5 and 7, then the other six
tables reusing their cells, run for real on the sample data (a few iterations per cell) and their
tables are checked against the cells' own records and an independent re-evaluation.
"""
import copy
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from pycocotools.coco import COCO

import caffe
from fassst.build_paths import REPO_ROOT
from fassst.config import load_config
from fassst.errors import InputError
from fassst.evaluation.coco_evaluator import evaluate_results, load_coco_gt
from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net
from fassst.net.weights_fit import parse_caffemodel
from fassst.reproduce import run_cell as run_cell_module
from fassst.reproduce.data_root import MissingDataError
from fassst.engine.trainer import train
from fassst.reproduce.plan import Planner, plan_table, run_settings
from fassst.reproduce.run_cell import RunContext, run_cell
from fassst.reproduce.runner import plan, reproduce_table
from fassst.reproduce.spec import SpecError, load_table
from fassst.reproduce.transfer import transfer_weights
from fassst.weights.convert_mobilenet_v2 import imagenet_weights

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
CLASSES = {"coco": 80, "cityscapes": 8}


def full_plan(numbers, r50_weights=None):
    """{table: {(row, slot): Cell}} for full runs, planned together (no data needed)."""
    planner = Planner(CLASSES.__getitem__, smoke=False, r50_weights=r50_weights)
    return {n: plan_table(load_table(n), planner) for n in numbers}, planner


def cell_of(placed, table, label, slot="main"):
    rows = load_table(table).rows
    return placed[table][(next(i for i, r in enumerate(rows) if r.label == label), slot)]


def test_shared_cells_train_once(tmp_path):
    r50 = tmp_path / "r50.caffemodel"
    r50.write_bytes(b"")
    placed, planner = full_plan(range(1, 10), r50_weights=str(r50))
    default = cell_of(placed, 1, "FASSST (MobileNet-54-V2, 416)")
    for table, label, slot in ((2, "FASSST-416", "main"), (5, "416, 5", "main"),
                               (6, "MobileNet-54-V2", "main"), (9, "RFF (R1 + R2 + R3)", "main"),
                               (7, "36", "coco")):
        assert cell_of(placed, table, label, slot).id == default.id, (table, label)
    city = cell_of(placed, 3, "FASSST [COCO] (768, n 49)")
    for table, label, slot in ((4, "FASSST-768 (paper: GTX 1080Ti)", "main"), (7, "49", "city"),
                               (8, "COCO pre-trained", "main")):
        assert cell_of(placed, table, label, slot).id == city.id, (table, label)
    assert city.init == default.id and city.init_cell == "coco"
    imagenet = cell_of(placed, 8, "ImageNet backbone only")
    assert imagenet.id != city.id and imagenet.init == "imagenet" and imagenet.depends_on is None
    coco_n = {cell_of(placed, 7, str(n), "coco").id for n in (16, 25, 36, 49, 64, 81)}
    city_n = {cell_of(placed, 7, str(n), "city").id for n in (16, 25, 36, 49, 64, 81)}
    assert len(coco_n) == 6 and len(city_n) == 6
    order = [c.id for c in planner.cells]
    assert len(order) == len(set(order))
    # 1 default + 3 (Table 5) + 1 (R50) + 5 (other n, COCO) + 6 (n, Cityscapes) + 1 (Table 8) + 1 (no RFF)
    assert len(order) == 18
    for c in planner.cells:  # a cell comes after the cell whose weights start it
        if c.depends_on:
            assert order.index(c.depends_on) < order.index(c.id)
    assert cell_of(placed, 6, "ResNet-50-FPN").init == str(r50)


def test_full_cells_are_the_paper_configs_and_schedules():
    placed, _ = full_plan([1, 3, 5])
    default = cell_of(placed, 1, "FASSST (MobileNet-54-V2, 416)")
    assert default.cfg == load_config("fassst_416_coco")
    assert default.max_iter == default.cfg.solver.max_iter == round(100 * 118287 / 8) == 1478588
    city = cell_of(placed, 3, "FASSST [COCO] (768, n 49)")
    assert city.cfg == load_config("fassst_768_cityscapes")
    assert city.cfg.solver.train_images == 2975 and city.max_iter == round(100 * 2975 / 8)
    d4 = cell_of(placed, 5, "416, 4")
    assert d4.cfg.head_depth == 4 and dict(d4.overrides) == {"head_depth": "4"}
    big = cell_of(placed, 5, "768, 5")
    assert (big.cfg.input_size, big.cfg.num_slots, big.cfg.num_classes) == (768, 36, 80)


def test_smoke_shrink_merges_the_solver():
    planner = Planner(lambda d: {"coco": 10, "cityscapes": 8}[d], smoke=True)
    placed = plan_table(load_table(3), planner)
    city = placed[(0, "main")]
    s = city.cfg.solver
    # batch and mode from the smoke settings, train_images still the Cityscapes config's
    assert (s.batch_size, s.solver_mode, s.train_images) == (2, "cpu", 2975)
    assert (city.cfg.input_size, city.cfg.num_slots, city.cfg.num_classes, city.max_iter) == (288, 49, 8, 20)
    coco = planner.cells[0]
    assert coco.id == city.init and coco.cfg.input_size == 192 and coco.cfg.num_classes == 10


def test_r50_cell_needs_weights_for_a_full_run():
    with pytest.raises(InputError, match="--r50-weights"):
        full_plan([6])


def test_table_spec_errors_name_the_entry(tmp_path):
    doc = json.load(open(os.path.join(REPO_ROOT, "python/fassst/reproduce/tables/table9.json")))
    doc["rows"][0]["paper"] = {"AP": {"value": 1.0, "source": "x", "derived": "y"}}
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match=r"row 0 .*paper AP: give either 'source'"):
        load_table(str(bad))
    doc = json.load(open(os.path.join(REPO_ROOT, "python/fassst/reproduce/tables/table9.json")))
    doc["rows"][1]["cells"]["main"] = "no_such_cell"
    bad.write_text(json.dumps(doc))
    with pytest.raises(SpecError, match="no shared cell 'no_such_cell'"):
        load_table(str(bad))


def _sample_like_root(src, dst, leave_out=()):
    """A data root of links into the smoke's sample root, without the parts in leave_out."""
    for rel in ("coco/annotations/instances_train2017.json", "coco/annotations/instances_val2017.json",
                "coco/annotations/image_info_test-dev2017.json", "coco/train2017", "coco/val2017",
                "coco/test2017", "cityscapes/gtFine", "cityscapes/leftImg8bit"):
        if rel in leave_out:
            continue
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        os.symlink(os.path.realpath(os.path.join(src, rel)), os.path.join(dst, rel))
    return dst


def test_missing_data_names_the_folder_and_archive(tmp_path):
    with pytest.raises(MissingDataError, match=r"coco/annotations/instances_train2017.json: missing; "
                                               r"unpack annotations_trainval2017.zip from https://cocodataset"):
        reproduce_table(7, data_root=str(tmp_path / "empty"), work_dir=str(tmp_path / "w"),
                        results_dir=str(tmp_path / "r"))
    res = subprocess.run([sys.executable, os.path.join(REPO_ROOT, "scripts", "reproduce.py"), "--table", "7",
                          "--data-root", str(tmp_path / "empty"), "--work", str(tmp_path / "w")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0 and res.stderr.startswith("error: ")
    assert "instances_train2017.json: missing" in res.stderr and not (tmp_path / "w" / "cells").exists()


# ---- smoke runs: Tables 9, 5, 7 (CI), then 1, 2, 3, 4, 6, 8 on their cells ----

@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    top = tmp_path_factory.mktemp("reproduce")
    work, results = top / "work", top / "results"
    logs = []
    for n in (9, 5, 7):
        reproduce_table(n, smoke=True, work_dir=str(work), results_dir=str(results), log=logs.append)
    return dict(work=work, results=results, logs=logs)


def _table(smoke, n):
    with open(smoke["results"] / f"table{n}.json") as f:
        return json.load(f)


def _check_table(smoke, n, undefined=()):
    """Every cell of the table filled from its run (a number, except the columns in `undefined`,
    which may be null where the run's own record is: no ground truth of that kind); the paper's
    numbers, the hardware and the commands present."""
    doc = _table(smoke, n)
    text = (smoke["results"] / f"table{n}.md").read_text()
    assert doc["smoke"] and "**Smoke run: these numbers are not results.**" in text
    spec = load_table(n)
    assert [r["label"] for r in doc["rows"]] == [r.label for r in spec.rows]
    for row, srow in zip(doc["rows"], spec.rows):
        if not srow.cells:
            continue
        for col in spec.columns:
            v = row["ours"][col.key]
            if not (col.key in undefined and v is None):
                assert isinstance(v, (int, float)) and np.isfinite(v), (n, row["label"], col.key)
            cell = doc["cells"][row["cells"][col.cell]]
            root, *path = col.metric.split("/")
            node = cell["metrics"][root] if root in ("segm", "bbox", "cityscapes") else cell[root]
            for k in path:
                node = node[k]
            assert v == node
            # the run's own record on disk says the same
            cell_dir = smoke["work"] / "cells" / cell["id"]
            if root in ("segm", "cityscapes"):
                on_disk = json.load(open(cell_dir / "eval" / "metrics.json"))[root]
                for k in path:
                    on_disk = on_disk[k]
                assert on_disk == v
        for key, pv in srow.paper:
            assert row["paper"][key] == pv.value
            assert re.search(rf"\| {re.escape(row['label'])} \|.*\b{pv.value:g}\b", text)
    for cid, cell in doc["cells"].items():
        assert f"`{cid}`" in text
        assert cell["produced_by"].startswith("scripts/reproduce.py --table ")
        assert "--smoke" in cell["produced_by"]
        assert "train: `scripts/train.py --config " in text and "eval: `scripts/eval.py" in text
        assert cell["train"]["iterations"] == 20
    if any(c.is_speed for c in spec.columns):
        hw = next(iter(doc["cells"].values()))["speed"]["hardware"]
        assert "Hardware of our speed figures:" in text and f"[h1] {hw}" in text
        assert hw.startswith("CPU: ")
    return doc, text


def test_smoke_table_9(smoke):
    doc, text = _check_table(smoke, 9)
    assert len(doc["cells"]) == 2
    assert "| R1 alone (no RFF) | - |" in text  # the paper's cells are lost, never filled


def test_smoke_table_5(smoke):
    doc, text = _check_table(smoke, 5)
    assert len(doc["cells"]) == 4
    assert "| 416, 4 | 30.5 (d) |" in text and "34.2 - 3.7" in text
    default = doc["rows"][1]["cells"]["main"]
    # Table 5's 416 / depth 5 cell is Table 9's RFF cell: it trained once, for Table 9
    assert default == _table(smoke, 9)["rows"][1]["cells"]["main"]
    assert doc["cells"][default]["produced_by"].startswith("scripts/reproduce.py --table 9 ")
    trained = [line for line in smoke["logs"] if default in line and "training" in line]
    assert len(trained) == 1


def test_smoke_table_7_all_n(smoke):
    doc, text = _check_table(smoke, 7)
    assert [r["label"] for r in doc["rows"]] == ["16", "25", "36", "49", "64", "81"]
    for row, n in zip(doc["rows"], (16, 25, 36, 49, 64, 81)):
        for slot in ("coco", "city"):
            cell = doc["cells"][row["cells"][slot]]
            assert json.load(open(smoke["work"] / "cells" / cell["id"] / "config.json"))["num_slots"] == n
            assert cell["speed"]["rois"] == n and cell["cost"]["rois"] == n
        city = doc["cells"][row["cells"]["city"]]
        # every Cityscapes cell starts from Table 1's COCO cell, less the class outputs
        assert city["init"] == doc["rows"][2]["cells"]["coco"]
        assert city["train"]["init_left_out"] == ["iam/out"]
    assert "| 36 | 34.2 |" in text and re.search(r"\| 49 \| -( \| [^|]+){3} \| 31\.1 \|", text)


def test_smoke_coco_ap_matches_an_independent_evaluation(smoke):
    """The table's AP is pycocotools' on the cell's saved val results (scripts/eval.py's path)."""
    doc = _table(smoke, 9)
    cell = doc["cells"][doc["rows"][1]["cells"]["main"]]
    d = smoke["work"] / "cells" / cell["id"]
    train_ann = json.load(open(d / "train" / "train.json"))["ann"]
    val = train_ann.replace("instances_train2017", "instances_val2017")
    results = json.load(open(d / "eval" / "val_results.json"))
    assert results, "the smoke's score threshold 0 sends every slot to the evaluation"
    metrics = evaluate_results(load_coco_gt(val), results)
    assert doc["rows"][1]["ours"]["AP"] == pytest.approx(metrics["segm"]["AP"], abs=1e-9)
    assert doc["rows"][1]["ours"]["AP50"] == pytest.approx(metrics["segm"]["AP50"], abs=1e-9)


def test_smoke_test_dev_submission_round_trips(smoke):
    doc = _table(smoke, 9)
    cell = doc["cells"][doc["rows"][1]["cells"]["main"]]
    t = cell["test_dev"]
    assert os.path.basename(t["zip"]) == "detections_test-dev2017_fassst_results.zip"
    with zipfile.ZipFile(t["zip"]) as z:
        assert z.namelist() == ["detections_test-dev2017_fassst_results.json"]
        results = json.loads(z.read(z.namelist()[0]))
    info = json.load(open(t["json"]))
    assert results == info and len(results) == t["detections"] > 0
    image_info = os.path.join(os.path.dirname(os.path.dirname(cell["train"]["ann"])),
                              "annotations", "image_info_test-dev2017.json")
    gt = COCO(image_info)
    dt = gt.loadRes(copy.deepcopy(results))  # pycocotools' own check (it edits what it loads)
    assert set(dt.getImgIds()) <= set(gt.getImgIds()) and len(gt.getImgIds()) == t["images"]
    for r in results:
        assert set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"}
        assert isinstance(r["segmentation"]["counts"], str) and r["category_id"] in gt.cats


def test_second_invocation_reuses_finished_cells(smoke, monkeypatch):
    def no(*a, **k):
        raise AssertionError("a finished cell ran again")

    before = (smoke["results"] / "table9.md").read_text()
    for name in ("train", "predict_dataset", "write_submission", "transfer_weights"):
        monkeypatch.setattr(run_cell_module, name, no)
    monkeypatch.setattr(run_cell_module.net_bench, "benchmark", no)
    reproduce_table(9, smoke=True, work_dir=str(smoke["work"]), results_dir=str(smoke["results"]),
                    log=lambda *a: None)
    assert (smoke["results"] / "table9.md").read_text() == before


def test_interrupted_cell_resumes_from_its_snapshot(smoke, tmp_path):
    """A cell whose training stopped at iteration 10 continues from there to its 20."""
    work = tmp_path / "w"
    table, placement, cells, root = plan(9, str(smoke["work"] / "sample_root"), str(work), smoke=True)
    cell = placement[(0, "main")]
    train_dir = work / "cells" / cell.id / "train"
    ann, images = root.train_set("coco")
    train(cell.cfg, str(train_dir), ann, images, seed=0, max_iter=10, workers=0, quiet=True,
          weights=imagenet_weights(cell.cfg, log=lambda *a: None))
    logs = []
    ctx = RunContext(data_root=root, work_dir=str(work), settings=run_settings(True), command="test",
                     log=logs.append)
    result = run_cell(cell, ctx, {})
    assert any(f"{cell.id}: training 20 iterations from iteration 10" in line for line in logs)
    assert result["train"]["iterations"] == 20
    snaps = sorted(os.listdir(train_dir / "snapshots"))
    assert {"fassst_416_coco_iter_10.solverstate", "fassst_416_coco_iter_20.solverstate"} <= set(snaps)
    with open(train_dir / "losses.csv") as f:
        its = [int(line.split(",")[0]) for line in f.readlines()[1:]]
    assert its == list(range(1, 21))


def test_other_tables_reuse_the_cells(smoke):
    """Tables 1, 2, 3, 4, 6, 8 on the cells of 5, 7, 9: two new cells (ResNet-50-FPN from
    fillers, Cityscapes from ImageNet), the rest read back."""
    logs = []
    per_class = {"person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"}
    for n in (1, 2, 3, 4, 6, 8):
        reproduce_table(n, smoke=True, work_dir=str(smoke["work"]), results_dir=str(smoke["results"]),
                        log=logs.append)
        # COCO's APs..APl and Cityscapes' classes the stand-in data has no instances of are undefined
        _check_table(smoke, n, undefined={"APs", "APm", "APl"} | per_class)
    assert len([line for line in logs if ": training " in line]) == 2
    t1 = (smoke["results"] / "table1.md").read_text()
    assert "| FASSST (MobileNet-54-V2, 416) | 34.2 |" in t1
    assert "detections_test-dev2017_fassst_results.zip" in t1
    t6 = _table(smoke, 6)
    r50 = t6["cells"][t6["rows"][1]["cells"]["main"]]
    assert r50["init"] == "none" and r50["train"]["init"] == "fillers"
    t2 = (smoke["results"] / "table2.md").read_text()
    assert "| Mask R-CNN (not reproduced) | 10.4 (d) | not run | not run | 272.1 (d) |" in t2
    t3 = _table(smoke, 3)["rows"][0]["ours"]
    assert all(isinstance(t3[k], float) for k in ("AP", "AP50", "person", "car", "truck", "bus"))


def test_transfer_leaves_out_only_the_class_outputs(tmp_path):
    src_cfg = load_config("fassst_cpu_sample", num_classes=10)
    dst_cfg = load_config("fassst_cpu_sample", num_classes=8, num_slots=25, max_train_rois=25)
    caffe.set_mode_cpu()
    src = str(tmp_path / "src.caffemodel")
    caffe_net(build_net(src_cfg, "train", batch_size=1), caffe.TRAIN).save(src)
    out = str(tmp_path / "dst.caffemodel")
    assert transfer_weights(src, dst_cfg, out) == ["iam/out"]
    a = {layer.name: layer for layer in parse_caffemodel(src).layer}
    b = {layer.name: layer for layer in parse_caffemodel(out).layer}
    assert set(a) - set(b) == {"iam/out"}
    assert list(b["iam/conv1"].blobs[0].data) == list(a["iam/conv1"].blobs[0].data)


def test_smoke_does_not_replace_a_full_table(tmp_path):
    (tmp_path / "table9.md").write_text("# Table 9 of the paper: measured\n")
    with pytest.raises(InputError, match="holds a full run's table"):
        reproduce_table(9, smoke=True, work_dir=str(tmp_path / "w"), results_dir=str(tmp_path))
