"""Loss-curve PNG from the per-iteration losses a run recorded (losses.csv), with a second panel
of validation AP under it when the run has a metrics.csv (engine/eval_hook.py)."""
import csv

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402

from fassst.engine.val_metrics import BEST_BY, best_row, read_metrics  # noqa: E402

# metrics.csv columns drawn in the AP panel: mask AP solid, box AP dashed, one colour per IoU.
AP_LINES = (("segm_AP", "-", "C0"), ("segm_AP50", "-", "C1"), ("bbox_AP", "--", "C0"),
            ("bbox_AP50", "--", "C1"))


def read_losses(csv_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0].keys() if rows else [])}


def plot(csv_path, png_path, title, metrics_csv=None):
    """metrics_csv: a run's validation metrics; drawn (sharing the iteration axis) if the file
    has rows."""
    cols = read_losses(csv_path)
    if not cols:
        raise ValueError(f"{csv_path}: no losses recorded yet")
    ap = read_metrics(metrics_csv) if metrics_csv else []
    it = cols.pop("iter")
    if ap:
        fig, (ax, ax_ap) = plt.subplots(2, 1, figsize=(7, 6.5), dpi=100, sharex=True,
                                        gridspec_kw=dict(height_ratios=(3, 2)))
    else:
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, values in cols.items():
        if name != "lr":
            ax.plot(it, values, label=name, linewidth=1.2)
    ax.set_ylabel("weighted loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title)
    if ap:
        _plot_ap(ax_ap, ap)
    (ax_ap if ap else ax).set_xlabel("iteration")
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


def _plot_ap(ax, rows):
    it = [r["iter"] for r in rows]
    for name, style, colour in AP_LINES:
        ax.plot(it, [r[name] for r in rows], style, color=colour, marker="o", markersize=3,
                linewidth=1.2, label=name)
    best = best_row(rows)
    ax.plot([best["iter"]], [best[BEST_BY]], "*", color="k", markersize=12,
            label=f"best {BEST_BY} {best[BEST_BY]:.1f} @ {best['iter']}")
    ax.set_ylabel("validation AP (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
