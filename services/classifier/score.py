"""Stage 3: predictions to ``ScoredEvent`` contracts (pure)."""

from __future__ import annotations

from datetime import datetime

from shared.entities import ALL, EntityMatcher
from shared.events import RawChat, RawEvent, Score, ScoredEvent
from shared.inference.engine import Prediction
from shared.redact import PLACEHOLDER, cap, pseudonymise, redacted_head


def to_score(p: Prediction) -> Score:
    return Score(label=p.label, confidence=p.confidence, probs=dict(p.probs), model=p.model, version=p.version)


def build_scored(
    event: RawEvent,
    sentiment: Prediction,
    intent: Prediction | None,
    *,
    matcher: EntityMatcher,
    received: datetime,
    max_future_skew_s: float,
    storage_chars: int,
    pseudonym_key: bytes = b"",
) -> ScoredEvent:
    """Tag entities (in the stored part of the text), clamp future event times, redact
    and cap the text, pseudonymise ids that hold personal data (email, phone, card, IBAN).

    Entities are tagged in exactly the text that is stored, up to its last whole word
    (the "…" a cap adds is no part of it): a prefix of the raw text was tagged, which
    redaction makes shorter or longer than the stored one, so an entity stored was
    missed, or one not stored was tagged."""
    event_time, adjusted = event.event_time, False
    # compared as a duration, not as received + skew: a skew near the setting's bound
    # would carry that sum past the calendar's end (OverflowError dead-lettered every record)
    if (event_time - received).total_seconds() > max_future_skew_s:
        event_time, adjusted = received, True
    head = redacted_head(event.text, storage_chars)
    text, truncated = cap(head, storage_chars)
    if event.stream == "news":
        stored = whole_words(head, len(text) - 1) if truncated else text
        # an alias such as "Phone" or "Card" would match a placeholder: each reads as a
        # space (a boundary, as the number or address it replaced was)
        entities = matcher.tag(PLACEHOLDER.sub(" ", stored))
    else:
        entities = [ALL]
    return ScoredEvent(
        id=pseudonymise(event.id, pseudonym_key),
        stream=event.stream,
        event_time=event_time,
        received_time=received,
        text=text,
        text_truncated=truncated,
        time_adjusted=adjusted,
        entities=entities,
        sentiment=to_score(sentiment),
        intent=to_score(intent) if intent is not None else None,
        conversation_id=(
            pseudonymise(event.conversation_id, pseudonym_key)
            if isinstance(event, RawChat) and event.conversation_id is not None
            else None
        ),
        source=event.source,
    )


def whole_words(text: str, limit: int) -> str:
    """The first ``limit`` characters of ``text`` without a word cut at the end.

    Entities are tagged in the part of a text that is stored (and that the model reads
    from): an article of up to 1,000,000 characters was scanned whole on the event loop.
    A head of whitespace alone has no word to tag: it gives "" (indexing its empty split
    raised, and the classifier stopped on that record after every restart). A head that
    ends in whitespace ends after a whole word, which is kept (the split dropped it)."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if text[limit].isspace():
        return head
    if head[-1:].isspace():
        return head.rstrip()
    words = head.rsplit(None, 1)
    return words[0] if words else ""


def key_of(scored: ScoredEvent) -> bytes:
    """Partition key: the conversation for chats, the first entity for news."""
    if scored.conversation_id:
        return scored.conversation_id.encode()
    return scored.entities[0].encode()
