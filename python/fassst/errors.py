"""The project's own errors: what a user's input causes (a missing or malformed file, a setting out
of range, a data set that contradicts itself, weights that do not fit the net), as against bugs.

Entry scripts end through fassst.cli.run, which prints these as one `error: <message>` line and
exits 1; any other exception is a bug and keeps its traceback. The message names the file or the
setting. Each class also derives from the built-in exception its callers caught before
(ValueError, FileNotFoundError, RuntimeError), so existing handlers keep working.
"""
import json
import os


class FassstError(Exception):
    """Base of the errors a user can act on from the message alone."""


class InputError(FassstError, ValueError):
    """A file or value given to the program is malformed or contradicts another."""


class MissingFileError(FassstError, FileNotFoundError):
    """A file or folder given to the program does not exist."""


def read_json(path, what="json file"):
    """The parsed content of `path`; MissingFileError or InputError naming the file otherwise.

    ValueError covers every way json refuses bytes: not JSON, not UTF-8 (UnicodeDecodeError), an
    integer of more digits than Python converts; RecursionError: arrays nested thousands deep."""
    if not os.path.isfile(path):
        raise MissingFileError(f"{path}: no such {what}")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what} ({e.strerror})") from None
    if not data.strip():
        raise InputError(f"{path}: {what} is empty ({len(data)} bytes), not JSON")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise InputError(f"{path}: {what} is not JSON ({e})") from None
