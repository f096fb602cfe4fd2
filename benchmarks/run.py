"""Entry point of ``make bench``: the scoring benchmark, CLI arguments passed through."""

from __future__ import annotations

import sys

from scoring import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
