"""A run folder refuses to resume under other settings, naming what differs."""
import dataclasses

import pytest

from fassst.config import load_config
from fassst.engine import run_dir


def test_resume_check_names_the_differences(tmp_path):
    cfg = load_config("fassst_cpu_sample", num_classes=10)
    settings = dict(ann="a.json", images="img", weights=None, seed=0, max_iter=100, workers=1,
                    augment=False)
    run_dir.check_resumable(str(tmp_path), cfg, settings)  # nothing there yet: fine
    run_dir.prepare(str(tmp_path), cfg, settings)
    run_dir.check_resumable(str(tmp_path), cfg, settings)
    run_dir.check_resumable(str(tmp_path), cfg, dict(settings, max_iter=200, workers=4))
    with pytest.raises(run_dir.RunDirConflict, match=r"config\.input_size.*run\.seed"):
        run_dir.check_resumable(str(tmp_path), dataclasses.replace(cfg, input_size=320),
                                dict(settings, seed=1))
    with pytest.raises(run_dir.RunDirConflict, match=r"config.json: .*run\.ann"):
        run_dir.check_resumable(str(tmp_path), cfg, dict(settings, ann="b.json"))
