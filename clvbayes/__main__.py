"""``python -m clvbayes``: the command line (see :mod:`clvbayes.cli`)."""

from clvbayes.cli import run

if __name__ == "__main__":
    run()
