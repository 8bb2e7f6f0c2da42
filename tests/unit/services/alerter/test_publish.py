"""Which statuses the outbox still has to announce, in order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.alerter.publish import unannounced
from shared.db.models import Alert

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "acknowledged", "announced", "expected"),
    [
        ("open", False, None, ["open"]),
        ("acknowledged", True, None, ["open", "acknowledged"]),
        ("acknowledged", True, "open", ["acknowledged"]),
        ("resolved", True, "open", ["acknowledged", "resolved"]),  # both changes between two passes
        ("resolved", True, None, ["open", "acknowledged", "resolved"]),
        ("resolved", False, "open", ["resolved"]),  # resolved by the alerter, never acknowledged
        ("resolved", True, "acknowledged", ["resolved"]),
        ("resolved", True, "resolved", []),
    ],
)
def test_every_status_the_alert_went_through_is_announced_in_order(
    status: str, acknowledged: bool, announced: str | None, expected: list[str]
) -> None:
    alert = Alert(status=status, acknowledged_at=T if acknowledged else None, announced_status=announced)
    assert unannounced(alert) == expected
