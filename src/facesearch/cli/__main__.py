"""``python -m facesearch.cli``."""

import sys

from facesearch.cli.main import main

sys.exit(main())
