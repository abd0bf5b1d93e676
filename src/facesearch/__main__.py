"""``python -m facesearch``: the ``facesearch`` command, run by this interpreter on the
package it imports (the one on ``PYTHONPATH`` in a checkout, not an installed copy)."""

import sys

from facesearch.cli import main

if __name__ == "__main__":
    sys.exit(main())
