"""``python -m lmcore``: the ``lmcore`` command line."""
import sys

from .cli.main import main

sys.exit(main())
