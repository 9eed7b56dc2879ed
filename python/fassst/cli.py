"""How the entry scripts end: `fassst.cli.run(main)`.

The project's own errors (fassst.errors.FassstError and the classes listed below) are the user's
to fix: they become one `error: <message>` line on stderr and exit status 1. Anything else is a
bug and keeps its traceback.
"""
import sys

from fassst.errors import FassstError


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
