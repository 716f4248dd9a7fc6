"""``python -m dcmforge``: the ``dcmforge`` command."""

import sys

from .cli import command

sys.exit(command())
