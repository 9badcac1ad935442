"""Settings for the whole test suite."""

import os

from hypothesis import settings

# CI runs on a fresh clone without a hypothesis database: draw the same examples every
# run there, so that a red CI always means a change broke something, never a new draw.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")
