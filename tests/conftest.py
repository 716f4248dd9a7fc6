"""Test-wide settings.

Hypothesis: no per-example deadline (the machine is small and shared, and a slow
example is not a wrong one); under CI the examples are derandomized, so a run
is reproducible and a failure can be replayed from its log.
"""

import os

from hypothesis import settings

settings.register_profile("dcmforge", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dcmforge")
