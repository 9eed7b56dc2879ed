"""Loss-curve PNG from the per-iteration losses a run recorded (losses.csv)."""
import csv

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt  # noqa: E402


def read_losses(csv_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0].keys() if rows else [])}


def plot(csv_path, png_path, title):
    cols = read_losses(csv_path)
    if not cols:
        raise ValueError(f"{csv_path}: no losses recorded yet")
    it = cols.pop("iter")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for name, values in cols.items():
        if name != "lr":
            ax.plot(it, values, label=name, linewidth=1.2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("weighted loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
