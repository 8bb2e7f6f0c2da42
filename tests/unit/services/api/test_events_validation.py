"""Batch validation of POST /v1/events: all-or-nothing, field errors per item index."""

from __future__ import annotations

import pytest

from services.api.errors import ApiError
from services.api.routes_events import validate_batch


def test_valid_batch_gets_ids_and_times() -> None:
    events = validate_batch([{"stream": "news", "text": "a"}, {"stream": "chat", "text": "b", "conversation_id": "c1"}])
    assert [e.stream for e in events] == ["news", "chat"]
    assert all(e.id and e.event_time.tzinfo for e in events)


def test_every_invalid_item_is_reported_with_its_index() -> None:
    with pytest.raises(ApiError) as info:
        validate_batch(
            [
                {"stream": "news", "text": "ok"},
                {"text": "no stream"},
                {"stream": "news", "text": "x", "unexpected": 1},
                {"stream": "chat", "text": "x"},
            ]
        )
    err = info.value
    assert err.status_code == 422 and "3 of 4" in err.message
    locs = {tuple(d["loc"]) for d in err.details}
    assert locs == {
        ("body", "events", 1, "stream"),
        ("body", "events", 2, "unexpected"),
        ("body", "events", 3, "conversation_id"),
    }
