"""``python -m wirekit``: the same as the ``wirekit`` command (see ``wirekit.cli``)."""

import sys

from wirekit.cli import main

sys.exit(main())
