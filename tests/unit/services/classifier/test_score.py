from __future__ import annotations

from datetime import UTC, datetime

from services.classifier.score import build_scored
from shared.entities import EntityMatcher
from shared.events import RawChat
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
