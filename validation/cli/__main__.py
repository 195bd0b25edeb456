"""``python -m sigprop.validation.cli``: the ``sigprop`` command."""
import sys

from . import main

if __name__ == "__main__":  # not when a test imports every module of the package
    sys.exit(main())
