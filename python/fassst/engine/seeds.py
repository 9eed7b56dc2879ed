"""The stability benchmark: one config trained and scored with K seeds (scripts/seeds.py).

Each seed is a run folder OUT/seed<k>/ (train/ and metrics.json); a finished seed is read back,
an interrupted one resumed, so the benchmark can be stopped and started again. Scores are on
the photos trained on (the sample set's purpose: does training converge, not generalise), or,
with a validation set, on its photos, which the run never trains on; each seed then also
reports its best validation iteration (engine/eval_hook.py). `classes` adds a mask AP50 column
per named class (a data set's most common class tells more than the mean over 60 rare ones).
"""
import csv
import json
import os
import statistics
import time

from fassst.data.coco_dataset import CocoDataset
from fassst.engine.evaluate import predict_dataset
from fassst.engine.run_dir import newest_solverstate
from fassst.engine.trainer import TrainingDiverged, train
from fassst.engine.val_metrics import best_row, read_metrics
from fassst.evaluation import report
from fassst.inference.predictor import Predictor

COLUMNS = (("segm", "AP50"), ("segm", "AP"), ("bbox", "AP50"), ("bbox", "AP"))


def parse_seeds(text):
    """"0-4" -> [0, 1, 2, 3, 4]; "0,3,7" -> [0, 3, 7]."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def final_losses(csv_path, last=50):
    """Mean of each weighted loss over the last `last` iterations of losses.csv."""
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))[-last:]
    return {k: sum(float(r[k]) for r in rows) / len(rows) for k in rows[0] if k.startswith("loss")}


def run_seed(cfg, out_dir, ann, images, weights, seed, max_iter=None, workers=1, quiet=True,
             val=None, classes=()):
    """Trains (or resumes) and scores one seed; returns its row (also OUT/metrics.json).

    val: dict(ann, images, every) of a validation set: the run evaluates on it as it trains, and
    the row scores the final weights on it instead of on the training photos."""
    path = os.path.join(out_dir, "seed_result.json")
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    t0 = time.time()
    train_dir = os.path.join(out_dir, "train")
    try:
        run = train(cfg, train_dir, ann, images, weights=weights, seed=seed, max_iter=max_iter,
                    workers=workers, resume=newest_solverstate(train_dir) is not None, quiet=quiet,
                    **(dict(val_ann=val["ann"], val_images=val["images"], eval_every=val["every"])
                       if val else {}))
    except TrainingDiverged as e:  # a result of this seed, not a reason to stop the others
        print(f"[seeds] seed {seed}: {e}")
        run = dict(iter=max_iter, stopped_by=None, final_weights=None)
    if run["stopped_by"]:
        return None
    score_ann, score_images = (val["ann"], val["images"]) if val else (ann, images)
    if run["final_weights"]:
        metrics = predict_dataset(Predictor(cfg, run["final_weights"]), score_ann, score_images,
                                  quiet=quiet).evaluate()
        report.save_json(metrics, os.path.join(out_dir, "metrics.json"))
    else:
        metrics = {t: {m: 0.0 for _, m in COLUMNS} for t, _ in COLUMNS}
        metrics["segm"]["per_category_AP50"] = {}
    collapse_warnings = sum(1 for line in open(os.path.join(train_dir, "train.log"))
                            if line.startswith("W"))
    row = dict(seed=seed, **{f"{t} {m}": metrics[t][m] for t, m in COLUMNS},
               losses=final_losses(os.path.join(train_dir, "losses.csv")),
               collapse_warnings=collapse_warnings, wall_s=round(time.time() - t0, 1),
               iters=run["iter"], scored_on=score_ann)
    for name in classes:
        row[f"{name} mask AP50"] = metrics["segm"]["per_category_AP50"].get(name, float("nan"))
    row["any-class box AP50"] = metrics["bbox"].get("any_class", {}).get("AP50", 0.0)
    best = best_row(read_metrics(os.path.join(train_dir, "metrics.csv"))) if val else None
    if best:
        row.update({"best iter": best["iter"], "best mask AP50": best["segm_AP50"]})
    with open(path, "w") as f:
        json.dump(row, f, indent=1)
    return row


def table(rows, title):
    """Markdown: a row per seed, then min, median, max of each score."""
    keys = [f"{t} {m}" for t, m in COLUMNS]
    keys += [k for k in rows[0] if k.endswith(" mask AP50") and k != "best mask AP50"]
    keys += [k for k in ("any-class box AP50",) if all(k in r for r in rows)]  # older rows lack it
    extra = [k for k in ("best iter", "best mask AP50") if k in rows[0]]
    loss_names = list(rows[0]["losses"])
    head = ["seed", *(k.replace("segm", "mask") for k in keys), *extra, *loss_names,
            "collapse warnings", "wall"]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([str(r["seed"]), *(f"{r[k]:.1f}" for k in keys),
                                        *(f"{r[k]:g}" if k == "best iter" else f"{r[k]:.1f}"
                                          for k in extra),
                                        *(f"{r['losses'][n]:.3f}" for n in loss_names),
                                        str(r["collapse_warnings"]), f"{r['wall_s'] / 60:.1f} min"]) + " |")
    for name, fn in (("min", min), ("median", statistics.median), ("max", max)):
        lines.append("| " + " | ".join([f"**{name}**", *(f"{fn(r[k] for r in rows):.1f}" for k in keys),
                                        *([""] * (len(extra) + len(loss_names) + 2))]) + " |")
    return "\n".join(lines)


def run_seeds(cfg, out_dir, ann, images, weights, seeds, max_iter=None, workers=1, quiet=True,
              val=None, classes=()):
    """Runs every seed in turn; writes OUT/seeds.{md,json}; returns the rows."""
    CocoDataset(ann, images)  # a bad data set fails before the first seed trains
    rows = []
    for seed in seeds:
        print(f"[seeds] seed {seed}: {os.path.join(out_dir, f'seed{seed}')}", flush=True)
        row = run_seed(cfg, os.path.join(out_dir, f"seed{seed}"), ann, images, weights, seed,
                       max_iter=max_iter, workers=workers, quiet=quiet, val=val, classes=classes)
        if row is None:
            print("[seeds] stopped; run the same command again to resume")
            break
        print(f"[seeds] seed {seed}: mask AP50 {row['segm AP50']:.1f}, bbox AP50 "
              f"{row['bbox AP50']:.1f} ({row['wall_s'] / 60:.1f} min)", flush=True)
        rows.append(row)
    if rows:
        scored = f"; scored on {val['ann']}" if val else ""
        text = table(rows, f"{cfg.name}, {len(rows)} seeds, {rows[0]['iters']} iterations, "
                           f"{ann}{scored}")
        with open(os.path.join(out_dir, "seeds.md"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(out_dir, "seeds.json"), "w") as f:
            json.dump(dict(config=cfg.name, ann=ann, rows=rows), f, indent=1)
        print(text)
    return rows
