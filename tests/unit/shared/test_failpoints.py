"""Fail points: parsing and the ``raise`` action (the ``kill`` action is exercised by the crash tests)."""

from __future__ import annotations

import pytest

from shared.failpoints import FailPointError, FailPoints


def test_raise_on_the_nth_pass_only() -> None:
    fail = FailPoints("before_prepare:2:raise, other:1:raise")
    fail.hit("before_prepare")
    fail.hit("unknown")
    with pytest.raises(FailPointError, match="before_prepare"):
        fail.hit("before_prepare")
    fail.hit("before_prepare")  # the 3rd pass goes through


def test_empty_spec_never_fails() -> None:
    fail = FailPoints("")
    for _ in range(3):
        fail.hit("after_publish")


def test_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="action"):
        FailPoints("after_publish:1:explode")
