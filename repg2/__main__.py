"""``python -m repg2``: the command line (``demo``, ``shell``, ``xref``, ``bench``); see ``repg2.tools.cli``."""

import sys

from repg2.tools.cli import main

sys.exit(main())
