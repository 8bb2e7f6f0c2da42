"""Scored records: decoded, or dead-lettered with a reason; never an exception out of the batch."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from services.aggregator import app
from shared.events import Score, ScoredEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(offset: int, value: bytes) -> Any:
    return SimpleNamespace(
        topic="text.scored", partition=0, offset=offset, key=None, value=value, headers=[], timestamp=1_700_000_000_000
    )


def scored(i: int) -> bytes:
    sentiment = Score(
        label="neutral",
        confidence=0.9,
        probs={"negative": 0.05, "neutral": 0.9, "positive": 0.05},
        model="m",
        version="v",
    )
    t = T0
    return ScoredEvent(
        id=f"s-{i}", stream="news", event_time=t, received_time=t, text="x", entities=["_all"], sentiment=sentiment
    ).to_bytes()


def test_bad_records_are_dead_lettered_with_their_reason() -> None:
    too_early = scored(1).replace(b'"event_time":"2026-01-01T00:00:00Z"', b'"event_time":"0001-01-01T00:00:00+14:00"')
    assert too_early != scored(1)
    good, bad = app.decode_scored([rec(0, scored(0)), rec(1, too_early), rec(2, b"{"), rec(3, scored(3))])
    assert [e.id for e in good] == ["s-0", "s-3"]
    assert [(b.offset, b.error_class) for b in bad] == [(1, "ValidationError"), (2, "JSONDecodeError")]
    assert "out of range" in bad[0].reason


def test_an_unexpected_error_dead_letters_that_record_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = app.decode_json

    def flaky(value: bytes | None) -> Any:
        if value == b"boom":
            raise OverflowError("date value out of range")
        return real(value)

    monkeypatch.setattr(app, "decode_json", flaky)
    good, bad = app.decode_scored([rec(0, scored(0)), rec(1, b"boom")])
    assert [e.id for e in good] == ["s-0"]
    assert [(b.offset, b.error_class, b.reason) for b in bad] == [
        (1, "OverflowError", "cannot decode: date value out of range")
    ]


def test_a_dead_letter_keeps_the_records_timestamp() -> None:
    _, bad = app.decode_scored([rec(0, b"not json")])
    assert bad[0].timestamp_ms == 1_700_000_000_000


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'"negative":0.05', b'"negative":NaN'),  # json and pydantic take NaN; jsonb refuses it
        (b'"label":"neutral"', b'"label":"' + b"n" * 17 + b'"'),  # scored_events.sentiment is 16 wide
        (b'"label":"neutral"', b'"label":"happy"'),  # not a sentiment label
        (b'"version":"v"', b'"version":"' + b"v" * 65 + b'"'),
        (b'"entities":["_all"]', b'"entities":["' + b"e" * 65 + b'"]'),
        (b'"entities":["_all"]', b'"entities":["_all","AC\\u0000ME"]'),  # jsonb and text[] refuse NUL
        (b'"version":"v"', b'"version":"v\\u0000"'),  # the buckets' model_version
    ],
)
def test_a_record_storage_would_refuse_is_dead_lettered_not_retried(old: bytes, new: bytes) -> None:
    """The database would refuse it (bad jsonb, a value too long, NUL): as a valid contract it
    stalled its partition, retried for ever as if PostgreSQL were down."""
    value = scored(5).replace(old, new)
    assert value != scored(5)
    good, bad = app.decode_scored([rec(0, value)])
    assert good == [] and [b.error_class for b in bad] == ["ValidationError"]


def test_a_nul_in_the_text_is_decoded_storage_replaces_it() -> None:
    value = scored(6).replace(b'"text":"x"', b'"text":"x\\u0000y"')
    good, bad = app.decode_scored([rec(0, value)])
    assert bad == [] and [e.text for e in good] == ["x\x00y"]
