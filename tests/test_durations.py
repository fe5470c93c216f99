"""Wall times as the docs' tables and ab's summary write them."""

import pytest

from benchruns.durations import minutes_text


@pytest.mark.parametrize("seconds, decimals, text", [
    (48.24, 1, "48.2 s"),
    (59.96, 1, "1 min 00.0 s"),  # rounded before the split: never "0 min 60.0 s" nor "60.0 s"
    (428.5, 1, "7 min 08.5 s"),
    (479.6, 0, "8 min 00 s"),  # was "7 min 60 s" in the ab-jobs table
    (442.2, 0, "7 min 22 s"),
    (3725.0, 0, "62 min 05 s"),
])
def test_minutes_text(seconds, decimals, text):
    assert minutes_text(seconds, decimals) == text
