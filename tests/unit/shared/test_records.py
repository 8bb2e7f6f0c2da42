"""A consumed record's headers reach the dead letter as the broker gave them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from shared.kafka.records import InRecord


def _message(headers: Any) -> Any:
    return SimpleNamespace(
        topic="news.raw", partition=1, offset=7, key=None, value=b"{}", headers=headers, timestamp=1.5
    )


@pytest.mark.parametrize(
    "headers", [[("trace", None), ("tag", b"v")], {"trace": None, "tag": b"v"}], ids=["list", "dict"]
)
def test_a_header_without_a_value_stays_null(headers: Any) -> None:
    """Kafka headers may be null (aiokafka gives None): it became b"None", which dead
    letters and their replays then carried as the header's value."""
    record = InRecord.from_faust(_message(headers))
    assert list(record.headers) == [("trace", None), ("tag", b"v")]
    assert record.timestamp_ms == 1500


def test_no_headers_give_an_empty_list() -> None:
    assert list(InRecord.from_faust(_message(None)).headers) == []
