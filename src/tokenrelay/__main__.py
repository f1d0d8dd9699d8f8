"""``python -m tokenrelay``: the same command line as the ``tokenrelay`` console script."""

from __future__ import annotations

import sys

from tokenrelay.cli import main

if __name__ == "__main__":
    sys.exit(main())
