"""verify() answers False, never an error, for a timestamp no float holds, and judges by
``now=0`` when given 0 (pure logic)."""

from __future__ import annotations

import pytest

from services.alerter.deliver import sign, verify

BODY, SECRET = b'{"id":"al-1"}', b"k"


@pytest.mark.parametrize("t", ["9" * 400, "-" + "9" * 400, "9" * 309])
def test_a_timestamp_too_large_for_a_float_is_false_not_an_overflow(t: str) -> None:
    """``t`` of 400 digits raised OverflowError (``now - t`` as a float): a receiver
    calling verify() answered a crafted header with a 500."""
    assert verify(SECRET, BODY, f"t={t},v1=00") is False
    assert verify(SECRET, BODY, f"t={t},v1=00", now=1.0) is False


def test_now_zero_is_a_time_not_the_clock() -> None:
    """``now or time.time()`` read ``now=0`` as not given: a signature made at 0 failed."""
    assert verify(SECRET, BODY, sign(SECRET, BODY, 0), now=0) is True
    assert verify(SECRET, BODY, sign(SECRET, BODY, 0), now=0.0) is True
    assert verify(SECRET, BODY, sign(SECRET, BODY, 1000), now=0) is False  # 1000 s away from 0
