"""How much a blob depends on the image: the spread of its units across images.

For a blob seen on images 1..K, with a_k(u) the value of unit u on image k and m the mean of
all a_k(u):
    level  = mean over u and k of |a_k(u) - m|   (how much the blob varies at all)
    spread = mean over u of std_k a_k(u)          (how much of that comes from the image)
    ratio  = spread / level
An ImageNet backbone on photos gives ratios of about 0.5 to 1 at every stage. A collapsed net
(one whose output no longer depends on its input: every unit pinned at ReLU6's 0 or 6, or a
head that learnt a constant per slot) gives ratios near 0; that is what located the
fine-tuning collapse (docs/DESIGN.md, "Training that converges"). A dead blob (constant) has
level 0 and ratio 0. The level is taken about the blob's mean, not about 0, so that a shared
offset (class logits starting at the prior's bias, -4.6 for every class) does not read as a
lack of spread.

Only a fixed random subset of each blob's units is kept (`max_units`), so watching large blobs
costs little; the subset is drawn once per blob from a fixed seed, so two probes agree.
"""
import collections

import numpy as np

COLLAPSED = 0.01  # ratio below which a blob is reported as not depending on the image


class SpreadProbe:
    """Collects per-image rows of some blobs and reports their spread across images.

    add(name, batch) takes a (N, ...) array of N images; the last `window` images per blob are
    kept. report() -> {name: (level, spread, ratio, images)} for blobs seen on >= 2 images.
    """

    def __init__(self, names, window=32, max_units=4096, seed=0):
        self.names = tuple(names)
        self.window, self.max_units, self.seed = window, max_units, seed
        self._units = {}
        self._rows = {n: collections.deque(maxlen=window) for n in self.names}

    def _subset(self, name, size):
        if name not in self._units:
            rng = np.random.default_rng([self.seed, size])
            self._units[name] = (np.sort(rng.choice(size, self.max_units, replace=False))
                                 if size > self.max_units else np.arange(size))
        return self._units[name]

    def add(self, name, batch):
        flat = np.asarray(batch).reshape(len(batch), -1)
        keep = self._subset(name, flat.shape[1])
        for row in flat[:, keep].astype(np.float64):  # the subset only, not the whole blob
            self._rows[name].append(row)

    def add_net(self, net):
        """Adds every watched blob of a caffe.Net (after its forward) that the net has."""
        for name in self.names:
            if name in net.blobs and net.blobs[name].num:
                self.add(name, net.blobs[name].data)

    def report(self):
        out = collections.OrderedDict()
        for name in self.names:
            rows = self._rows[name]
            if len(rows) >= 2:
                out[name] = spread_of(np.stack(rows))
        return out


def spread_of(rows):
    """rows: (K images, U units) -> (level, spread, ratio, K)."""
    level = float(np.abs(rows - rows.mean()).mean())
    spread = float(rows.std(axis=0).mean())
    constant = level <= 1e-6 * float(np.abs(rows).mean())  # rounding of a constant blob's mean
    return level, spread, (0.0 if constant or level == 0 else spread / level), len(rows)


def collapsed(report, threshold=COLLAPSED):
    """Names of the blobs whose ratio is below threshold, in report order."""
    return [name for name, (_, _, ratio, _) in report.items() if ratio < threshold]


def format_table(report, threshold=COLLAPSED):
    lines = [f"{'blob':<22} {'images':>6} {'level':>10} {'spread':>10} {'ratio':>7}"]
    for name, (level, spread, ratio, k) in report.items():
        flag = "  <- does not depend on the image" if ratio < threshold else ""
        lines.append(f"{name:<22} {k:>6d} {level:>10.4g} {spread:>10.4g} {ratio:>7.3f}{flag}")
    return "\n".join(lines)


def watched_blobs(cfg, phase):
    """The blobs a run watches: backbone stage ends (E among them), the pyramid levels, the
    IAM's last conv, and its outputs (train: class and box logits per slot; else the map)."""
    from fassst.net.backbone import stage_blob_names  # noqa: E402 (keeps this module caffe-free)
    outputs = ["iam/cls", "iam/loc"] if phase == "train" else ["iam/out"]
    return (list(stage_blob_names(cfg)) + ["p1/conv", "p2/conv", "p3/conv",
                                           f"iam/conv{cfg.iam_convs}"] + outputs)
