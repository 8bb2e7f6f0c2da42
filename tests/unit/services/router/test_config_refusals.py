"""Router settings that were accepted and then failed at run time: an empty consumer group
(a traceback at start, InvalidGroupIdError) and an infinite ledger retention (every
retention run failed: PostgreSQL interval out of range)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.router.config import MAX_RETENTION_DAYS, RouterSettings


def test_an_empty_group_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_ROUTER_GROUP_ID", "")
    with pytest.raises(ValidationError, match="TW_ROUTER_GROUP_ID"):
        RouterSettings()
    monkeypatch.setenv("TW_ROUTER_GROUP_ID", "g")
    assert RouterSettings().group_id == "g"


@pytest.mark.parametrize("value", ["inf", "nan", str(MAX_RETENTION_DAYS + 1)])
def test_a_ledger_retention_that_cannot_run_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TW_ROUTER_LEDGER_RETENTION_DAYS", value)
    with pytest.raises(ValidationError, match="TW_ROUTER_LEDGER_RETENTION_DAYS"):
        RouterSettings()


def test_the_longest_ledger_retention_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_ROUTER_LEDGER_RETENTION_DAYS", str(MAX_RETENTION_DAYS))
    assert RouterSettings().ledger_retention_days == MAX_RETENTION_DAYS
