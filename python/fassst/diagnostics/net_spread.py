"""The spread across photos of every watched blob of a model's deploy net (scripts/spread.py)."""
from tqdm import tqdm

from fassst.data import letterbox
from fassst.data.coco_dataset import CocoDataset
from fassst.diagnostics.net_features import open_net
from fassst.diagnostics.spread import SpreadProbe, watched_blobs


def deploy_spread(cfg, weights, ann, images, max_images=12, blobs=None, quiet=False):
    """Runs the deploy net (TEST phase: stored BatchNorm statistics) on the first `max_images`
    photos of ann/images; returns SpreadProbe.report() over `blobs` (default: watched_blobs)."""
    net = open_net(cfg, weights)
    names = blobs or watched_blobs(cfg, "deploy")
    missing = [b for b in names if b not in net.blobs]
    if missing:
        raise ValueError(f"{cfg.name}: the deploy net has no blob(s) {missing}")
    dataset = CocoDataset(ann, images)
    count = min(max_images, len(dataset))
    if count < 2:
        raise ValueError(f"{ann}: a spread needs at least 2 images, the set has {len(dataset)}")
    probe = SpreadProbe(names, window=count)
    for i in tqdm(range(count), desc="spread", unit="img", disable=quiet):
        image = dataset.load(i).image
        lb = letterbox.fit(*image.shape[:2], cfg.input_size)
        net.blobs["data"].data[0] = letterbox.image_to_blob(image, lb)
        net.forward()
        probe.add_net(net)
    return probe.report()
