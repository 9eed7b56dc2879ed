"""How the entry scripts end: `fassst.cli.run(main)`.

The project's own errors (fassst.errors.FassstError and the classes listed below) are the user's
to fix: they become one `error: <message>` line on stderr and exit status 1. Anything else is a
bug and keeps its traceback.
"""
import sys

from fassst.errors import FassstError

# Project errors in modules that do not derive them from FassstError yet: (module, class). A class
# is looked up only once its module is imported, which raising it needs anyway, so a script that
# never imports Caffe does not import it here either.
_ALSO = (("fassst.engine.hooks", "TrainingDiverged"),
         ("fassst.weights.convert_mobilenet_v2", "ConversionError"))


def user_errors():
    """The exception classes `run` reports as one line."""
    found = [getattr(sys.modules[m], name, None) for m, name in _ALSO if m in sys.modules]
    return (FassstError, *(c for c in found if c is not None))


def run(main):
    """Exits with main()'s return value (None: 0), or 1 after `error: ...` on a project error."""
    try:
        status = main()
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(status)
