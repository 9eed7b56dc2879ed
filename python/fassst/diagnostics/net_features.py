"""A deploy net's features on a set of photos, gathered for the linear probes
(diagnostics/feature_probe.py, scripts/feature_probe.py)."""
import caffe
import numpy as np
from tqdm import tqdm

from fassst.data import letterbox
from fassst.data.assign import home_cells
from fassst.data.coco_dataset import CocoDataset
from fassst.diagnostics.feature_probe import ProbeData, cell_pool
from fassst.net.fassst_net import build_net
from fassst.net.load import caffe_net


def head_input(net):
    """The blob the IAM reads (E): the bottom of its first layer, named as the net names it
    (not as the copy Caffe's inserted Split hands the IAM)."""
    layers = list(net._layer_names)
    for name in ("iam/conv1", "iam/pool", "iam/out"):
        if name in layers:
            blob = net.bottom_names[name][0]
            for split, layer in zip(layers, net.layers):
                if layer.type == "Split" and blob in net.top_names[split]:
                    return net.bottom_names[split][0]
            return blob
    raise ValueError("the net has no IAM layer (iam/conv1, iam/pool or iam/out)")


def open_net(cfg, weights):
    """cfg's deploy net on the CPU (TEST phase: stored BatchNorm statistics) with `weights`."""
    caffe.set_mode_cpu()
    return caffe_net(build_net(cfg, "deploy"), caffe.TEST, weights=weights)


def collect(net, cfg, ann, images, class_name, grid, blob, flips=False, own=False, quiet=False):
    """ProbeData of every photo of ann/images (and of each mirrored, with flips): `net`'s `blob`
    pooled to grid x grid cells, and the boxes. The whole net runs per photo (pycaffe's
    forward(end=...) cannot name the copies Caffe's inserted Splits make). own: also read the
    net's own class logit per slot (`iam/out`; the grid must be the slots')."""
    if own and grid * grid != cfg.num_slots:
        raise ValueError(f"the network's own output has {cfg.num_slots} slots, not {grid} x {grid}")
    if blob not in net.blobs:
        raise ValueError(f"{cfg.name}: the deploy net has no blob {blob!r}")
    dataset = CocoDataset(ann, images)
    if class_name not in dataset.class_names:
        raise ValueError(f"{ann}: no class named {class_name!r}")
    k = dataset.class_names.index(class_name)
    size = cfg.input_size
    centres = (np.arange(grid) + 0.5) / grid
    rows = dict(cells=[], cell_pos=[], cell_label=[], box_feats=[], box_centre=[], boxes=[],
                box_area=[], box_is_class=[], cell_own=[])
    for i in tqdm(range(len(dataset)), desc="features", unit="img", disable=quiet):
        sample = dataset.load(i)
        for flip in (False, True) if flips else (False,):
            lb = letterbox.fit(*sample.image.shape[:2], size)
            lb = lb.flipped() if flip else lb
            net.blobs["data"].data[0] = letterbox.image_to_blob(sample.image, lb)
            net.forward()
            cells = cell_pool(net.blobs[blob].data[0], grid)
            boxes = lb.boxes_to_input(sample.boxes)
            r, c = home_cells(boxes, grid, size, size)
            label = np.zeros((grid, grid), bool)
            label[r[sample.classes == k], c[sample.classes == k]] = True
            rows["cells"].append(cells.reshape(grid * grid, -1))
            rows["cell_pos"].append(np.eye(grid * grid))
            rows["cell_label"].append(label.reshape(-1))
            padded = np.pad(cells, ((1, 1), (1, 1), (0, 0)))  # zero features beyond the border
            rows["box_feats"].append(np.array([padded[y:y + 3, x:x + 3].reshape(-1)
                                               for y, x in zip(r, c)]).reshape(len(r), 9 * cells.shape[2]))
            rows["box_centre"].append(np.stack([centres[c], centres[r], centres[c], centres[r]], 1))
            rows["boxes"].append(boxes / size)
            rows["box_area"].append(sample.areas)
            rows["box_is_class"].append(sample.classes == k)
            if own:  # a copy: the blob is overwritten by the next forward
                rows["cell_own"].append(net.blobs["iam/out"].data[0, 4 + k].reshape(-1).copy())
    return ProbeData(**{key: np.concatenate(v) if v else None for key, v in rows.items()})

