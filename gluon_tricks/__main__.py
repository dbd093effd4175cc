"""`python -m gluon_tricks` is the `gluon-tricks` command."""
import sys

from gluon_tricks.cli import main

if __name__ == "__main__":
    sys.exit(main())
