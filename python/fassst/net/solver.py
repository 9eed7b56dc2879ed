"""SolverParameter for a config: the paper's schedule (batch 8, lr 0.005, 100 epochs).

Readings (not in the paper): SGD with momentum 0.9, weight decay 1e-4, lr x0.1 at 2/3 and 8/9
of training, and optionally a linear warm-up (solver.warmup_iters). batch_size is images per
update; iter_size > 1 splits it over several forward/backward passes (same update, less memory)
for small GPUs.
"""
from caffe.proto import caffe_pb2


def step_iters(max_iter):
    """The multistep policy's steps: lr x0.1 at 2/3 and at 8/9 of training."""
    return [max_iter * 2 // 3, max_iter * 8 // 9]


def lr_at(solver_cfg, max_iter, it):
    """The learning rate Caffe's solver uses at iteration `it` under build_solver's policy."""
    lr = solver_cfg.base_lr
    if solver_cfg.lr_policy == "multistep":
        lr *= 0.1 ** sum(it >= s for s in step_iters(max_iter))
    if it < solver_cfg.warmup_iters:
        alpha = it / solver_cfg.warmup_iters
        lr *= solver_cfg.warmup_factor * (1 - alpha) + alpha
    return lr


def build_solver(cfg, train_net_path, snapshot_prefix, max_iter=None):
    s = cfg.solver
    if s.batch_size % s.iter_size:
        raise ValueError(f"{cfg.name}: solver batch_size {s.batch_size} is not a multiple of "
                         f"iter_size {s.iter_size}")
    sp = caffe_pb2.SolverParameter()
    sp.train_net = train_net_path
    sp.type = "SGD"
    sp.base_lr = s.base_lr
    sp.momentum = s.momentum
    sp.weight_decay = s.weight_decay
    sp.iter_size = s.iter_size
    sp.max_iter = max_iter or s.max_iter
    if s.lr_policy == "multistep":
        sp.lr_policy = "multistep"
        sp.gamma = 0.1
        sp.stepvalue.extend(step_iters(sp.max_iter))
    elif s.lr_policy == "fixed":
        sp.lr_policy = "fixed"
    else:
        raise ValueError(f"{cfg.name}: lr_policy must be multistep or fixed, got {s.lr_policy}")
    if s.clip_gradients > 0:
        sp.clip_gradients = s.clip_gradients
    if s.warmup_iters > 0:
        sp.warmup_iter = s.warmup_iters
        sp.warmup_factor = s.warmup_factor
    sp.display = 20
    sp.average_loss = 20
    sp.snapshot = s.snapshot_iters
    sp.snapshot_prefix = snapshot_prefix
    modes = {"gpu": caffe_pb2.SolverParameter.GPU, "cpu": caffe_pb2.SolverParameter.CPU}
    if s.solver_mode not in modes:
        raise ValueError(f"{cfg.name}: solver_mode must be gpu or cpu, got {s.solver_mode}")
    sp.solver_mode = modes[s.solver_mode]
    return sp
