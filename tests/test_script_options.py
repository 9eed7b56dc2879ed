"""Every numeric option of every entry script is range-checked where argparse reads it (a checker
of fassst.cli as its `type`), so a value out of range stops the script at once with argparse's
usage error: exit status 2 and one `error:` line naming the option, before any work is done.

Each script's own parser is taken as its main() builds it (parse_args is intercepted), so an
option added later with a plain `type=int` fails here."""
import argparse
import glob
import os
import runpy
import subprocess
import sys
from unittest import mock

import pytest

from fassst import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "scripts", "*.py"))
                 if not os.path.basename(p).startswith("_"))


class _Parsed(Exception):
    pass


def script_parser(name):
    """The ArgumentParser scripts/<name> builds, stopped at its parse_args."""
    found = []

    def intercept(parser, *args, **kwargs):
        found.append(parser)
        raise _Parsed

    with mock.patch.object(argparse.ArgumentParser, "parse_args", intercept), \
            mock.patch.object(sys, "argv", [name]), mock.patch.dict(os.environ), \
            mock.patch.object(sys, "path", [os.path.join(ROOT, "scripts")] + sys.path):
        with pytest.raises(_Parsed):
            runpy.run_path(os.path.join(ROOT, "scripts", name), run_name="__main__")
    return found[0]


def bad_values(action):
    """Values the option must refuse, or None when its type is not a range checker."""
    kind = action.type
    if kind is cli.seed_list:
        return ["4-0", "x", f"0-{cli.MAX_SEEDS}"]
    if action.choices is not None:
        return [str(max(action.choices) + 1), "x"]
    if getattr(kind, "kind", None) is int:
        return [str(kind.low - 1), "x", "1.5"] + ([str(kind.high + 1)] if kind.high is not None else [])
    if getattr(kind, "kind", None) is float:
        values = ["nan", "inf", "x", str(kind.low if kind.low_open else kind.low - 0.5)]
        if kind.high is not None:
            values.append(str(kind.high if kind.high_open else kind.high + 0.5))
        return values
    return None


NUMERIC = (int, float)


def numeric_options(parser):
    """[(option string, action)] of the options whose values are numbers."""
    out = []
    for action in parser._actions:
        if not action.option_strings or action.nargs == 0:
            continue
        kind = action.type
        if kind in NUMERIC or getattr(kind, "kind", None) in NUMERIC or kind is cli.seed_list:
            out.append((action.option_strings[-1], action))
    return out


@pytest.mark.parametrize("script", SCRIPTS)
def test_numeric_options_refuse_values_out_of_range(script, capsys):
    parser = script_parser(script)
    for option, action in numeric_options(parser):
        values = bad_values(action)
        assert values is not None, (f"{script} {option}: type={action.type.__name__} reads any "
                                    f"number; use a range checker of fassst.cli")
        for value in values:
            with pytest.raises(SystemExit) as stop:
                parser.parse_args([f"{option}={value}"])
            err = capsys.readouterr().err
            assert stop.value.code == 2, f"{script} {option}={value}"
            errors = [line for line in err.splitlines() if ": error: " in line]
            assert len(errors) == 1 and f"argument {option}" in errors[0], (script, option, value, err)


def test_every_script_with_numbers_is_covered():
    """The scripts with numeric options, so that a parser lookup that finds none is noticed."""
    have = [s for s in SCRIPTS if numeric_options(script_parser(s))]
    assert {"train.py", "infer.py", "seeds.py", "split_coco.py", "export_onnx.py"} <= set(have)


def test_train_with_negative_iterations_is_a_usage_error():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "train.py"),
                           "--config", "fassst_cpu_sample", "--out", "/nonexistent/run",
                           "--iters", "-5"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert errors == ["train.py: error: argument --iters: expected an integer >= 1, got -5"]
    assert not os.path.exists("/nonexistent/run")


@pytest.mark.parametrize("checker, good, expect", [
    (cli.positive_int, "3", 3), (cli.nonneg_int, "0", 0), (cli.seed, str(cli.SEED_MAX), cli.SEED_MAX),
    (cli.fraction, "1", 1.0), (cli.fraction, "0", 0.0), (cli.open_fraction, "0.25", 0.25),
    (cli.seed_list, "0-4,7", "0-4,7")])
def test_checkers_pass_values_in_range(checker, good, expect):
    assert checker(good) == expect
