"""``python -m dcmforge``: the ``dcmforge`` command."""

import sys

from .cli import main

sys.exit(main())
