"""fassst.cli.run, the way every entry script ends: the project's own errors as one `error:` line
and exit status 1, bugs with their traceback, main's return value as the exit status."""
import pytest

from fassst import cli
from fassst.config import ConfigError
from fassst.data.coco_dataset import DatasetError
from fassst.engine.run_dir import RunDirConflict
from fassst.errors import MissingFileError
from fassst.images.read import ImageReadError


def _fail(error):
    def main():
        raise error
    return main


@pytest.mark.parametrize("error", [
    DatasetError("a.json: no images"), ImageReadError("b.jpg: truncated JPEG"),
    ConfigError("c.json: input_size must be an integer"), MissingFileError("d: no such file"),
    RunDirConflict("out: already has snapshots")], ids=lambda e: type(e).__name__)
def test_project_errors_end_as_one_line(capsys, error):
    with pytest.raises(SystemExit) as stop:
        cli.run(_fail(error))
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err == f"error: {error}\n"


def test_divergence_and_conversion_errors_are_the_projects():
    from fassst.engine.hooks import TrainingDiverged  # imports Caffe: only here
    from fassst.errors import FassstError
    from fassst.weights.convert_mobilenet_v2 import ConversionError
    assert issubclass(TrainingDiverged, FassstError) and issubclass(ConversionError, FassstError)
    assert issubclass(TrainingDiverged, RuntimeError) and issubclass(ConversionError, ValueError)


def test_bugs_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        cli.run(lambda: 1 / 0)
    with pytest.raises(ValueError):  # a plain ValueError is not the project's
        cli.run(_fail(ValueError("oops")))


@pytest.mark.parametrize("status, code", [(None, None), (0, 0), (3, 3), (130, 130)])
def test_main_return_value_is_the_exit_status(status, code):
    with pytest.raises(SystemExit) as stop:
        cli.run(lambda: status)
    assert stop.value.code == code
