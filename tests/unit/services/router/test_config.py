from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.router.config import RouterSettings


def test_max_batch_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch is sent, then counted in one transaction: an unbounded one (16,400 chats
    overflowed asyncpg's parameter limit) was re-sent on every retry."""
    monkeypatch.setenv("TW_ROUTER_MAX_BATCH", "10000")
    assert RouterSettings().max_batch == 10_000
    monkeypatch.setenv("TW_ROUTER_MAX_BATCH", "10001")
    with pytest.raises(ValidationError, match="TW_ROUTER_MAX_BATCH"):
        RouterSettings()


def test_anger_score_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RouterSettings().anger_score == 1.0
    monkeypatch.setenv("TW_ROUTER_ANGER_SCORE", "1.5")
    assert RouterSettings().anger_score == 1.5
    monkeypatch.setenv("TW_ROUTER_ANGER_SCORE", "0")  # every chat would be angry
    with pytest.raises(ValidationError, match="TW_ROUTER_ANGER_SCORE"):
        RouterSettings()
