"""``python -m clvbayes``: the command line (see :mod:`clvbayes.cli`)."""

import sys

from clvbayes.cli import main

if __name__ == "__main__":
    sys.exit(main())
