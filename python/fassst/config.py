"""Named network/training configs: JSON data in fassst/configs/, loaded into a frozen dataclass.

Unknown keys are rejected by name and missing keys take the defaults below, so a config file
states only what differs. Builders take the config as an explicit argument; nothing reads a
global config.
"""
import dataclasses
import os
from typing import Tuple

from fassst.errors import InputError, MissingFileError, read_json
from fassst.net.geometry import BOX_CODINGS

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


class ConfigError(InputError):
    """A config file or override is malformed or out of range; the message names the key."""


@dataclasses.dataclass(frozen=True)
class SolverConfig:
    batch_size: int = 8          # images per iteration (paper: 8)
    iter_size: int = 1           # gradient accumulation; batch_size is split across it
    base_lr: float = 0.005       # paper
    epochs: float = 100          # paper
    train_images: int = 118287   # COCO train2017 images with annotations; sets max_iter
    momentum: float = 0.9        # reading: not in the paper
    weight_decay: float = 0.0001  # reading: not in the paper
    lr_policy: str = "multistep"  # reading: x0.1 at 2/3 and 8/9 of training
    clip_gradients: float = 0.0  # L2 norm cap of the whole gradient (Caffe's); 0 = off
    # Linear warm-up (Goyal et al.; the solver's warmup_iter, cmake/patches/0010): the rate
    # climbs from warmup_factor x to 1 x over the first warmup_iters iterations; 0 = none.
    warmup_iters: int = 0
    warmup_factor: float = 0.001
    snapshot_iters: int = 10000
    solver_mode: str = "gpu"     # what `caffe train` uses; pycaffe runners choose their own
    # From this fraction of max_iter on, the IAM's BatchNorm trains with fixed statistics
    # (precise BN at that iteration; engine/trainer.py); 0 = never. For tiny batches: the IAM
    # normalises S x S maps, so 2 images give it 2 S^2 values per channel (docs/DESIGN.md).
    freeze_iam_bn_at: float = 0.0

    @property
    def images_per_pass(self):
        """Images in one forward/backward pass: an update's batch split over iter_size passes."""
        return self.batch_size // self.iter_size

    @property
    def max_iter(self):
        return int(round(self.epochs * self.train_images / self.batch_size))


@dataclasses.dataclass(frozen=True)
class FassstConfig:
    name: str
    input_size: int = 416            # square letterboxed input (paper: 416; 768 for Cityscapes)
    backbone: str = "mobilenet_v2"   # mobilenet_v2 (MobileNet-54-V2) | resnet50_fpn (Table 6)
    freeze_backbone_bn: bool = True  # train with the ImageNet BN statistics (reading)
    # MobileNetV2 only: BatchNorm + Scale folded into the convs (no BN layers in any phase).
    # Frozen BN scales a conv's effective learning rate by (gamma / sigma)^2, up to 10^4 in
    # MobileNetV2: fine-tuning then destroys the backbone (docs/DESIGN.md "Training that converges").
    fold_backbone_bn: bool = True
    # Fine-tuning recipe of the backbone (docs/DESIGN.md "Training that converges"): learning-rate
    # multiplier of its convs and BN affines (0 = frozen), stages S1..Sk frozen outright (k = 0:
    # none; detectron2's FREEZE_AT = 2 is stem + first stage), BN affines frozen (Detectron's BN*).
    backbone_lr_mult: float = 0.1
    # The stages after E (S(head_depth+1)..S7, the main body only P3 reads): their own
    # multiplier; < 0 = backbone_lr_mult (docs/DESIGN.md "Training that converges").
    backbone_body_lr_mult: float = -1.0
    freeze_backbone_stages: int = 0
    freeze_backbone_affine: bool = False
    head_depth: int = 5              # backbone stages in the network head (paper: 4, 5, 6)
    num_slots: int = 36              # n, a square (paper: 16 .. 81)
    num_classes: int = 80            # C
    rff: bool = True                 # False: the tail sees R1 alone (Table 9)
    mask_dim: int = 248              # D, pyramid mask layers and tail (set so the cost matches the paper)
    iam_dim: int = 192               # channels of the IAM convs
    iam_convs: int = 8               # 3x3 convs in the IAM before its 1x1 output conv
    # Where the IAM's average pooling to the S x S grid sits (only when S does not divide the
    # grid the stride-2 convs reach): "early" right after them, so the stride-1 convs run on the
    # slot grid; "last" before the output conv. A stride-1 pooling last hands neighbouring slots
    # mostly the same features (docs/DESIGN.md "IAM pooling").
    iam_pool: str = "early"
    tail_convs: int = 4              # 3x3 convs in the mask tail before the deconv
    roi_size: int = 7                # R3 side; R2 = 2x, R1 = 4x, mask = 8x
    loss_weights: Tuple[float, float, float] = (5.75, 3.0, 1.25)  # mask, loc, cls (paper)
    mask_bce_weight: float = 0.0     # per-pixel BCE beside Dice; 0 = the paper's loss (losses.py)
    # Class-logit bias at start = -log((1 - p) / p) (RetinaNet's prior); 0 = bias 0 (p 0.5).
    cls_prior: float = 0.01
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0         # Lc
    loc_focal_gamma: float = 0.0     # Ll: 0 = BCE; gamma 2 stalls localisation (docs/DESIGN.md)
    score_threshold: float = 0.05    # deploy: IAMDecode keeps slots above this
    # What the IAM's t, l, b, r mean: "image" fractions of the image (the paper's reading), or
    # "cell" offsets from the slot's cell centre (IAMDecodeParameter.box_coding; docs/DESIGN.md)
    box_coding: str = "image"
    max_train_rois: int = 64         # train prototxt with Input layers: ROI blob size
    train_augment: bool = True       # flip + colour jitter in training (off: memorise, the demo)
    # With train_augment: each photo shrunk to a random [train_scale_min, 1] of its letterbox
    # and placed anywhere in the input (1 = off; data/augment.py)
    train_scale_min: float = 1.0
    solver: SolverConfig = SolverConfig()


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _is_kind(value, kind):
    if kind in (int, float) and isinstance(value, bool):  # JSON true is no count
        return False
    return isinstance(value, (int, float) if kind is float else kind)


def _build(cls, raw, where):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a JSON object, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(fields)}")
    for key, value in raw.items():
        kind = fields[key].type
        if kind in _KINDS and not _is_kind(value, kind):
            raise ConfigError(f"{where}: {key} must be {_KINDS[kind]}, got {value!r}")
    missing = sorted(f.name for f in fields.values() if f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING and f.name not in raw)
    if missing:
        raise ConfigError(f"{where}: missing key(s) {missing}")
    kwargs = dict(raw)
    if "solver" in kwargs:
        kwargs["solver"] = _build(SolverConfig, kwargs["solver"], where + " [solver]")
    if "loss_weights" in kwargs:
        weights = kwargs["loss_weights"]
        if not (isinstance(weights, (list, tuple)) and len(weights) == 3
                and all(_is_kind(w, float) for w in weights)):
            raise ConfigError(f"{where}: loss_weights must be 3 numbers (mask, loc, cls), "
                              f"got {weights!r}")
        kwargs["loss_weights"] = tuple(weights)
    return cls(**kwargs)


def config_names():
    return sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".json"))


def load_config(name_or_path, **overrides):
    """A named config (fassst/configs/NAME.json) or a path to a JSON file; overrides win."""
    path = (name_or_path if name_or_path.endswith(".json")
            else os.path.join(CONFIG_DIR, name_or_path + ".json"))
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such config; named configs: {', '.join(config_names())}")
    raw = read_json(path, "config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a config is a JSON object, got {type(raw).__name__}")
    raw.update(overrides)
    cfg = _build(FassstConfig, raw, path)
    validate(cfg)
    return cfg


def validate(cfg):
    from fassst.net.geometry import BACKBONE_STAGES, grid_side
    try:
        grid_side(cfg.num_slots)
    except ValueError as e:
        raise ConfigError(f"{cfg.name}: {e}") from None
    if cfg.head_depth not in (4, 5, 6):
        raise ConfigError(f"{cfg.name}: head_depth must be 4, 5 or 6 (paper's ablation), "
                          f"got {cfg.head_depth}")
    if cfg.backbone not in BACKBONE_STAGES:
        raise ConfigError(f"{cfg.name}: backbone must be {' or '.join(sorted(BACKBONE_STAGES))}, "
                          f"got {cfg.backbone}")
    if cfg.solver.warmup_iters < 0 or not 0 < cfg.solver.warmup_factor <= 1:
        raise ConfigError(f"{cfg.name}: solver.warmup_iters must be >= 0 and solver.warmup_factor "
                          f"in (0, 1], got {cfg.solver.warmup_iters} and {cfg.solver.warmup_factor}")
    if not 0 <= cfg.solver.freeze_iam_bn_at < 1:
        raise ConfigError(f"{cfg.name}: solver.freeze_iam_bn_at must be in [0, 1) (a fraction of "
                          f"max_iter; 0 = never), got {cfg.solver.freeze_iam_bn_at}")
    if cfg.fold_backbone_bn and cfg.backbone != "mobilenet_v2":
        raise ConfigError(f"{cfg.name}: fold_backbone_bn is for the MobileNetV2 backbone (its "
                          f"ImageNet weights are folded here); set it false for {cfg.backbone}")
    if not 0 <= cfg.freeze_backbone_stages <= 7:
        raise ConfigError(f"{cfg.name}: freeze_backbone_stages must be 0..7, "
                          f"got {cfg.freeze_backbone_stages}")
    if cfg.backbone_lr_mult < 0:
        raise ConfigError(f"{cfg.name}: backbone_lr_mult must be >= 0, got {cfg.backbone_lr_mult}")
    if not 0 <= cfg.cls_prior < 1:
        raise ConfigError(f"{cfg.name}: cls_prior must be in [0, 1) (0 = off), got {cfg.cls_prior}")
    if cfg.iam_pool not in ("early", "last"):
        raise ConfigError(f"{cfg.name}: iam_pool must be \"early\" or \"last\", got {cfg.iam_pool!r}")
    if cfg.box_coding not in BOX_CODINGS:
        raise ConfigError(f"{cfg.name}: box_coding must be \"image\" or \"cell\", "
                          f"got {cfg.box_coding!r}")
    if not 0 < cfg.train_scale_min <= 1:
        raise ConfigError(f"{cfg.name}: train_scale_min must be in (0, 1] (1 = no scale jitter), "
                          f"got {cfg.train_scale_min}")
    if cfg.input_size % 32:
        raise ConfigError(f"{cfg.name}: input_size must be a multiple of 32 (the backbone's "
                          f"stride), got {cfg.input_size}")


def to_dict(cfg):
    return dataclasses.asdict(cfg)
