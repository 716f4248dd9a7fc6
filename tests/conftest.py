"""Test-wide settings.

Hypothesis: no per-example deadline (the machine is small and shared, and a slow
example is not a wrong one), and derandomized everywhere without an example
database: every run tries the same examples, so a bug a test can find it finds
on every run (pinned with @example once found), and no run fails on an example
an earlier run saved. DCMFORGE_HYPOTHESIS=explore draws new examples (with the
database) to search further.
"""

import os

from hypothesis import settings

settings.register_profile("dcmforge", deadline=None, derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", deadline=None)
settings.load_profile("explore" if os.environ.get("DCMFORGE_HYPOTHESIS") == "explore" else "dcmforge")
