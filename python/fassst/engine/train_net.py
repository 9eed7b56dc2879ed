"""The train net with the Python data layer for a dataset: what the solver trains and what
precise BN forwards, built the same way for both."""
from fassst.data.layer import data_layer_tops
from fassst.net.fassst_net import build_net


def train_net_param(cfg, ann, images, iam_bn_frozen=False, **opts):
    """NetParameter of cfg's train net reading `ann`/`images`; opts are the data layer's
    (seed, workers, augment, start_batch, ...); iam_bn_frozen as build_net's."""
    return build_net(cfg, "train", iam_bn_frozen=iam_bn_frozen, data_layer=lambda ns: data_layer_tops(
        ns, cfg, ann, images, batch_size=cfg.solver.images_per_pass, **opts))
