"""A lone surrogate escape in an id on the wire (``"s-\\ud800"``, valid JSON): every one
decoded to U+FFFD, so ``"s-\\ud800"`` and ``"s-\\udbff"`` became the same id. The aggregator
keeps the first event per id and stream, so the second was lost (neither stored nor
dead-lettered), and two conversations merged into one. Review finding: the tests on
distinct ids fail on the previous code."""

from __future__ import annotations

import json

import pytest

from shared.events import (
    MAX_ID_CHARS,
    InvalidEvent,
    RawChat,
    RawEvent,
    ScoredEvent,
    Stream,
    decode_json,
    decode_raw,
    parse,
    surrogate_free_id,
)

LONE_SURROGATES = [chr(c) for c in range(0xD800, 0xE000)]


def _raw(value: bytes, stream: Stream = "chat", offset: int = 0) -> RawEvent:
    return decode_raw(value, stream=stream, topic=f"{stream}.raw", partition=0, offset=offset, timestamp_ms=0)


def _chat(**fields: str) -> bytes:
    """A chat record as a producer writes it: a lone surrogate as its JSON escape."""
    return json.dumps({"id": "c-1", "conversation_id": "conv-1", "text": "my card was declined"} | fields).encode()


def _ids(value: bytes) -> tuple[str, str]:
    event = _raw(value)
    assert isinstance(event, RawChat)
    return event.id, event.conversation_id


def test_ids_that_differ_only_in_a_lone_surrogate_stay_distinct() -> None:
    """The reviewer's case: both events are kept, each in its own conversation."""
    first = _ids(b'{"id": "evt-\\ud800", "conversation_id": "c\\udc00", "text": "first message"}')
    second = _ids(b'{"id": "evt-\\udbff", "conversation_id": "c\\udfff", "text": "second, different message"}')
    assert first[0] != second[0] and first[1] != second[1]
    assert first[0].startswith("evt-\ufffd~") and first[1].startswith("c\ufffd~")  # still readable


@pytest.mark.parametrize("field", ["id", "conversation_id"])
def test_every_lone_surrogate_gives_its_own_id_and_none_is_an_id_sent_as_text(field: str) -> None:
    """All 2,048 lone surrogates, and the replacement character itself sent as such."""
    literal = "s-\ufffd"
    got = {_ids(_chat(**{field: f"s-{s}"}))[field == "conversation_id"] for s in LONE_SURROGATES}
    got.add(_ids(_chat(**{field: literal}))[field == "conversation_id"])
    assert len(got) == len(LONE_SURROGATES) + 1
    assert literal in got  # an id without a lone surrogate is kept as sent


def test_the_same_id_always_decodes_alike_so_a_redelivery_is_still_a_duplicate() -> None:
    value = _chat(id="evt-\ud83d 1", conversation_id="conv \ud83d 42")
    assert _ids(value) == _ids(value) == _ids(value.replace(b"\\ud83d", b"\\uD83D"))  # the same escape
    assert _raw(value, offset=1).id == _raw(value, offset=2).id  # the id is the record's, not its place
    assert _ids(value)[1] == surrogate_free_id("conv \ud83d 42")


def test_the_text_still_reads_the_replacement_character_alone() -> None:
    event = _raw(_chat(id="c-\ud800", conversation_id="conv \ud83d 42", text="conv \ud83d 42 and \udc00"))
    assert isinstance(event, RawChat)
    assert event.text == "conv \ufffd 42 and \ufffd"
    assert event.id.startswith("c-\ufffd~") and event.conversation_id.startswith("conv \ufffd 42~")


def test_a_pair_of_surrogate_escapes_is_one_character_and_the_id_is_kept_as_sent() -> None:
    assert _ids(b'{"id": "\\ud83d\\udcac", "conversation_id": "c-\\ud83d\\udcac", "text": "hi"}') == (
        "\U0001f4ac",
        "c-\U0001f4ac",
    )


def test_an_id_at_the_length_limit_stays_within_it_and_distinct() -> None:
    """The readable part is cut, the digest covers the whole id: ids that differ only in
    what is cut stay two."""
    head = "x" * (MAX_ID_CHARS - 2)
    first, second = _ids(_chat(id=head + "\ud800a")), _ids(_chat(id=head + "\ud800b"))
    assert len(first[0]) == len(second[0]) == MAX_ID_CHARS and first[0] != second[0]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x" * MAX_ID_CHARS + "\ud800", f"at most {MAX_ID_CHARS} characters"),
        ("jane\n\ud800", "U+000A (at index 4)"),
        ("jane\ud800\u202e", "U+202E (at index 5)"),
    ],
)
def test_an_id_refused_as_sent_is_refused_alike_with_a_surrogate(value: str, why: str) -> None:
    """Not cut into an id the contract takes: dead-lettered, with a reason that never quotes it."""
    for field in ("id", "conversation_id"):
        with pytest.raises(InvalidEvent) as err:
            _raw(_chat(**{field: value}))
        assert err.value.error_class == "ValidationError"
        assert err.value.reason.startswith(f"{field}: ") and why in err.value.reason
        assert value[:4] not in err.value.reason


def test_a_scored_event_read_by_the_aggregator_keeps_its_ids_apart_too() -> None:
    scored = {
        "id": "n-1",
        "stream": "news",
        "event_time": "2026-01-02T03:04:05Z",
        "received_time": "2026-01-02T03:04:05Z",
        "text": "hi",
        "sentiment": {"label": "neutral", "confidence": 1.0, "probs": {"neutral": 1.0}, "model": "m", "version": "1"},
    }
    got = {
        (e.id, e.conversation_id)
        for s in ("\ud800", "\udbff")
        for e in [parse(ScoredEvent, decode_json(json.dumps(scored | {"id": f"n-{s}", "conversation_id": s}).encode()))]
    }
    assert len({i for i, _ in got}) == len({c for _, c in got}) == 2
