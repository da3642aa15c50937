"""``lmplay`` / ``python -m tui``."""
from __future__ import annotations

import sys


def main(argv=None) -> int:
    from .app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
