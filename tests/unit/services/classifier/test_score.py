from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.classifier.config import ClassifierSettings
from services.classifier.score import build_scored, whole_words
from shared.entities import EntityMatcher, WatchedEntity
from shared.events import RawChat, RawNews
from shared.inference.engine import Prediction

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PRED = Prediction("negative", 0.9, {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, "m", "v1", "sha")


def _scored(text: str, storage_chars: int = 4_000) -> str:
    event = RawChat(id="c1", conversation_id="conv1", event_time=NOW, text=text)
    scored = build_scored(
        event, PRED, PRED, matcher=EntityMatcher([]), received=NOW, max_future_skew_s=60, storage_chars=storage_chars
    )
    return scored.text


def test_contact_details_after_many_redacted_cards_are_redacted_before_storage() -> None:
    # The classifier redacted a prefix of twice the storage cap; redaction shortened it,
    # so an email cut at the prefix's end landed in the stored text as "jane.smith@exa".
    cards = "4111 1111 1111 1111, " * 330
    for pad in range(1040, 1075):
        stored = _scored(cards + "x" * pad + " reach me at jane.smith@example.com or +44 7700 900123 " + "y" * 5_000)
        assert "jane" not in stored and "7700" not in stored, pad


def test_stored_text_is_redacted_and_capped() -> None:
    assert _scored("my card 4111 1111 1111 1111 is lost") == "my card [CARD] is lost"
    assert len(_scored("z" * 5_000, storage_chars=1_000)) == 1_000


@pytest.mark.parametrize("char", ["\x01", "😀", '"', "é"])
def test_the_largest_scored_event_fits_the_brokers_record_limit(char: str) -> None:
    """At the largest storage cap a scored event still fits a 1 MiB record, whatever the
    text's characters cost in JSON (a control character is escaped to six bytes)."""
    limit = ClassifierSettings.model_fields["storage_text_chars"].metadata
    most = next(m.le for m in limit if getattr(m, "le", None) is not None)
    event = RawChat(id="c1", conversation_id="conv1", event_time=NOW, text="x" + char * 300_000)
    scored = build_scored(
        event, PRED, PRED, matcher=EntityMatcher([]), received=NOW, max_future_skew_s=60, storage_chars=most
    )
    assert len(scored.to_bytes()) < 1024 * 1024 - 64 * 1024  # room for headers


def test_a_storage_cap_beyond_the_record_limit_is_refused() -> None:
    with pytest.raises(ValidationError):
        ClassifierSettings(storage_text_chars=1_000_000)


def test_entities_are_tagged_in_the_stored_part_of_a_long_article() -> None:
    matcher = EntityMatcher(
        [
            WatchedEntity("ACME", "Acme plc", aliases=("Acme",)),
            WatchedEntity("APPL", "Apple", aliases=("Apple",)),
            WatchedEntity("TSCO", "Tesco", aliases=("Tesco",)),
        ]
    )
    # "Apple" is cut out of "Applebee" by the cap; Tesco comes after it
    text = "Acme warns on profits " + "x" * (1_000 - 22 - 6) + " Applebee " + "Tesco " * 10_000
    event = RawNews(id="n1", event_time=NOW, text=text)
    scored = build_scored(event, PRED, None, matcher=matcher, received=NOW, max_future_skew_s=60, storage_chars=1_000)
    assert scored.entities == ["ACME", "_all"]
    assert whole_words("one two three", 6) == "one" and whole_words("one two", 7) == "one two"


def test_ids_holding_an_email_are_stored_as_stable_keyed_pseudonyms() -> None:
    """The id pattern allows '@': an email used as chat or conversation id reached
    scored_events, both ledgers, the queue message and the Kafka key verbatim."""

    def scored(key: bytes, **ids: str) -> tuple[str, str | None]:
        event = RawChat(event_time=NOW, text="hi, my card is blocked", **ids)  # type: ignore[arg-type]
        s = build_scored(
            event,
            PRED,
            PRED,
            matcher=EntityMatcher([]),
            received=NOW,
            max_future_skew_s=60,
            storage_chars=4_000,
            pseudonym_key=key,
        )
        return s.id, s.conversation_id

    sid, conv = scored(b"k1", id="alice.smith@example.com", conversation_id="alice.smith@example.com")
    assert sid.startswith("pii-") and len(sid) == 36 and "alice" not in sid and sid == conv
    assert scored(b"k1", id="alice.smith@example.com", conversation_id="alice.smith@example.com") == (sid, conv)
    assert scored(b"k2", id="alice.smith@example.com", conversation_id="c")[0] != sid  # keyed
    # ordinary ids, run-stamped replay ids included, are kept
    assert scored(b"k1", id="guardian-7@1700000000000", conversation_id="order-12345678") == (
        "guardian-7@1700000000000",
        "order-12345678",
    )


def test_a_head_of_whitespace_alone_has_nothing_to_tag_and_the_event_is_still_scored() -> None:
    """The head's split was empty and indexing it raised IndexError: the classifier
    stopped on that record after every restart."""
    assert whole_words(" " * 1_000 + "x", 1_000) == ""
    assert whole_words(("\n\t " * 400)[:1_000] + "Acme", 1_000) == ""
    matcher = EntityMatcher([WatchedEntity("ACME", "Acme plc", aliases=("Acme",))])
    event = RawNews(id="n1", event_time=NOW, text=" " * 1_000 + "Acme warns")
    scored = build_scored(event, PRED, None, matcher=matcher, received=NOW, max_future_skew_s=60, storage_chars=1_000)
    assert scored.entities == ["_all"] and scored.text_truncated


def _news_entities(text: str, storage_chars: int, matcher: EntityMatcher) -> tuple[str, list[str]]:
    event = RawNews(id="n1", event_time=NOW, text=text)
    scored = build_scored(
        event, PRED, None, matcher=matcher, received=NOW, max_future_skew_s=60, storage_chars=storage_chars
    )
    return scored.text, scored.entities


ACME = EntityMatcher([WatchedEntity("ACME", "Acme plc", aliases=("Acme",))])


def test_the_last_whole_word_before_the_cap_is_kept() -> None:
    """A cap falling right after a space dropped the word before it: the split stripped the
    trailing space and took that word for a cut one."""
    assert whole_words("one two three", 8) == "one two"
    assert whole_words("one two  three", 9) == "one two"
    stored, entities = _news_entities("x" * 94 + " Acme " + "Zeta corp and more words", 100, ACME)
    assert stored.endswith(" Acme…") and entities == ["ACME", "_all"]


def test_entities_are_tagged_in_the_redacted_text_that_is_stored() -> None:
    """The tagger read a prefix of the raw text, but the stored text is redacted first:
    shorter or longer, so an entity stored was missed, or one not stored was tagged."""
    # redaction shortens: "Acme" lies past the raw prefix but inside the stored text
    email = "jane.doe.some.long.mailbox@example-company.example.com "
    stored, entities = _news_entities(email + "w " * 20 + "Acme shares fall sharply " + "z " * 100, 100, ACME)
    assert "Acme" in stored and entities == ["ACME", "_all"]
    # redaction lengthens ("a@b.io" is 6 characters, "[EMAIL]" 7): "Acme" lies inside the
    # raw prefix but is cut from the stored text
    stored, entities = _news_entities("a@b.io " * 12 + "Acme " + "z " * 100, 100, ACME)
    assert "Acme" not in stored and entities == ["_all"]


def test_a_redaction_placeholder_is_no_alias() -> None:
    matcher = EntityMatcher([WatchedEntity("PHONE", "Phone Co", aliases=("Phone", "Card"))])
    assert _news_entities("call 415-555-2671 or pay with 4111 1111 1111 1111", 4_000, matcher)[1] == ["_all"]
    assert _news_entities("Phone Co results", 4_000, matcher)[1] == ["PHONE", "_all"]


@pytest.mark.parametrize("skew", [math.inf, 1e12])
def test_a_huge_future_skew_clamps_nothing_and_raises_nothing(skew: float) -> None:
    """received + timedelta(skew) overflowed (inf, 1e12): every record was dead-lettered."""
    event = RawNews(id="n1", event_time=datetime(8999, 12, 31, tzinfo=UTC), text="Acme shares fall")
    scored = build_scored(event, PRED, None, matcher=ACME, received=NOW, max_future_skew_s=skew, storage_chars=4_000)
    assert scored.event_time == event.event_time and not scored.time_adjusted


def test_the_largest_future_skew_allowed_still_clamps() -> None:
    most = ClassifierSettings.model_fields["max_future_skew_s"].metadata
    skew = next(m.le for m in most if getattr(m, "le", None) is not None)
    for ahead, adjusted in ((timedelta(seconds=skew), False), (timedelta(seconds=skew + 1), True)):
        event = RawNews(id="n1", event_time=NOW + ahead, text="Acme shares fall")
        scored = build_scored(
            event, PRED, None, matcher=ACME, received=NOW, max_future_skew_s=skew, storage_chars=4_000
        )
        assert scored.time_adjusted is adjusted


def test_a_future_event_time_past_the_skew_is_still_clamped() -> None:
    event = RawNews(id="n1", event_time=datetime(8999, 12, 31, tzinfo=UTC), text="Acme shares fall")
    scored = build_scored(event, PRED, None, matcher=ACME, received=NOW, max_future_skew_s=300, storage_chars=4_000)
    assert scored.event_time == NOW and scored.time_adjusted
    event = RawNews(id="n1", event_time=NOW + timedelta(seconds=301), text="Acme")
    scored = build_scored(event, PRED, None, matcher=ACME, received=NOW, max_future_skew_s=300, storage_chars=4_000)
    assert scored.time_adjusted
    event = RawNews(id="n1", event_time=NOW + timedelta(seconds=300), text="Acme")
    scored = build_scored(event, PRED, None, matcher=ACME, received=NOW, max_future_skew_s=300, storage_chars=4_000)
    assert not scored.time_adjusted
