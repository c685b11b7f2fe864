"""fusionlib.study.timing --steps: one row per paper (per stage for DCMIF), in a private cache that is
removed afterwards, the caller's environment restored."""

import math
import os

from fusionlib.study import timing


def test_step_seconds_rows_and_private_cache(isolated):
    before = os.environ["FUSIONLIB_CACHE"]
    table = timing.step_seconds([("iassf", 32, 1, "joint")], extra_steps=1)
    assert list(table.columns) == ["paper", "crop", "batch", "what", "s/step"]
    assert list(table["paper"]) == ["iassf"] and math.isfinite(float(table["s/step"].iloc[0]))
    assert os.environ["FUSIONLIB_CACHE"] == before  # the private cache was the measurement's only
    assert not (isolated / "cache").exists() or not any((isolated / "cache").glob("**/last.pt"))
