"""The solver's learning rate, step by step, as Caffe applies it (multistep with the linear
warm-up of cmake/patches/0010) against net/solver.lr_at, which the trainer logs."""
import dataclasses

import numpy as np
import pytest

import caffe
from caffe import layers as L

from fassst.config import SolverConfig, load_config
from fassst.net.solver import build_solver, lr_at


def _tiny_net(path):
    """A constant input through one InnerProduct to a Euclidean loss: its gradient is fixed by
    the weights alone, so each step's rate is the applied update over that gradient."""
    ns = caffe.NetSpec()
    ns.x, ns.y = L.DummyData(shape=[dict(dim=[2, 3]), dict(dim=[2, 1])], ntop=2,
                             data_filler=[dict(type="constant", value=1.0),
                                          dict(type="constant", value=0.0)])
    ns.fc = L.InnerProduct(ns.x, num_output=1, bias_term=False,
                           weight_filler=dict(type="constant", value=0.5))
    ns.loss = L.EuclideanLoss(ns.fc, ns.y)
    path.write_text(str(ns.to_proto()))
    return str(path)


@pytest.mark.parametrize("warmup_iters", [0, 4])
def test_caffe_applies_the_rate_lr_at_gives(tmp_path, warmup_iters):
    solver_cfg = dataclasses.replace(SolverConfig(), base_lr=0.01, momentum=0.0, weight_decay=0.0,
                                     warmup_iters=warmup_iters, warmup_factor=0.1)
    cfg = dataclasses.replace(load_config("fassst_cpu_sample"), solver=solver_cfg)
    max_iter = 9  # multistep: x0.1 at 6 and at 8
    param = build_solver(cfg, _tiny_net(tmp_path / "net.prototxt"), str(tmp_path / "snap"), max_iter)
    param.solver_mode = param.CPU
    (tmp_path / "solver.prototxt").write_text(str(param))
    caffe.set_mode_cpu()
    solver = caffe.get_solver(str(tmp_path / "solver.prototxt"))
    w = solver.net.params["fc"][0]
    applied = []
    for it in range(max_iter):
        solver.net.forward()
        solver.net.clear_param_diffs()
        solver.net.backward()
        grad = w.diff.copy()
        solver.step(1)
        applied.append(float(np.mean(w.diff / grad)))  # SGD leaves the step in diff
    want = [lr_at(solver_cfg, max_iter, it) for it in range(max_iter)]
    np.testing.assert_allclose(applied, want, rtol=1e-5)
    if warmup_iters:
        assert want[0] == pytest.approx(0.001) and want[2] == pytest.approx(0.01 * (0.1 * 0.5 + 0.5))
        assert want[4] == pytest.approx(0.01) and want[7] == pytest.approx(0.001)
        assert want[8] == pytest.approx(0.0001)
