"""How the entry scripts read numbers and end.

Numbers: every numeric option is read by one of the checkers below (`type=cli.positive_int`, ...),
so a value out of range is argparse's one-line usage error (exit status 2) before any work, never
a traceback from deep inside a run that already made its folders.

The end: `fassst.cli.run(main)`. The project's own errors (fassst.errors.FassstError and the
classes listed below) are the user's to fix: they become one `error: <message>` line on stderr
and exit status 1. Anything else is a bug and keeps its traceback.
"""
import argparse
import math
import re
import sys

from fassst.errors import FassstError

SEED_MAX = 2 ** 32 - 1  # numpy's RandomState takes seeds up to here
MAX_SEEDS = 1000


def _span(low, high, low_open=False, high_open=False):
    if high is None:
        return f"> {low}" if low_open else f">= {low}"
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def int_range(low, high=None):
    """An argparse `type`: an integer in [low, high] (high None: no upper bound)."""
    def parse(text):
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer {_span(low, high)}, got {text}")
        return value
    parse.__name__ = f"integer {_span(low, high)}"
    parse.kind, parse.low, parse.high = int, low, high
    return parse


def float_range(low, high=None, low_open=False, high_open=False):
    """An argparse `type`: a finite number between low and high (ends included unless open)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (math.isfinite(value)
                and (value > low if low_open else value >= low)
                and (high is None or (value < high if high_open else value <= high))):
            raise argparse.ArgumentTypeError(
                f"expected a number {_span(low, high, low_open, high_open)}, got {text}")
        return value
    parse.__name__ = f"number {_span(low, high, low_open, high_open)}"
    parse.kind, parse.low, parse.high = float, low, high
    parse.low_open, parse.high_open = low_open, high_open
    return parse


positive_int = int_range(1)
nonneg_int = int_range(0)
seed = int_range(0, SEED_MAX)
fraction = float_range(0.0, 1.0)                              # a probability or score threshold
open_fraction = float_range(0.0, 1.0, low_open=True, high_open=True)  # a share of a set, not all or none

_SEED_PART = re.compile(r"^(\d+)(?:-(\d+))?$")


def seed_list(text):
    """An argparse `type`: seeds as "0-4" (a range, ends included) or "0,2,5", or both mixed;
    each in [0, SEED_MAX], at most MAX_SEEDS. The text is returned as given (parse_seeds reads it)."""
    count = 0
    for part in text.split(","):
        m = _SEED_PART.match(part.strip())
        if not m:
            raise argparse.ArgumentTypeError(f"expected seeds such as 0-4 or 0,2,5, got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi > SEED_MAX or lo > hi:
            raise argparse.ArgumentTypeError(
                f"{part.strip()}: seeds are integers in [0, {SEED_MAX}], ranges low-high with "
                f"low <= high")
        count += hi - lo + 1
    if count > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"{text}: {count} seeds, at most {MAX_SEEDS}")
    return text


seed_list.__name__ = "seed list"


def user_errors():
    """The exception classes `run` reports as one line."""
    return (FassstError,)


def run(main):
    """Exits with main()'s return value (None: 0), or 1 after `error: ...` on a project error."""
    try:
        status = main()
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status)
