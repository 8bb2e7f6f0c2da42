"""The explanation retention leaves behind: only the example texts go."""

from __future__ import annotations

from typing import Any

from services.alerter.explain import TEXT_REMOVED, TEXTS_REMOVED, without_texts


def test_only_the_texts_are_replaced_and_the_removal_marked() -> None:
    m = {"id": "c-1", "text": "my card 4111 [redacted] was charged twice", "negative_prob": 0.97, "event_time": "t"}
    e: dict[str, Any] = {"share": 0.8, "z": 3.0, "top_messages": [m], "top_terms": [{"term": "charged", "z": 2.1}]}
    out = without_texts(e)
    assert out == e | {"top_messages": [m | {"text": TEXT_REMOVED}], TEXTS_REMOVED: "retention"}
    assert e["top_messages"][0]["text"] == m["text"]  # the input is not changed


def test_odd_shapes_are_kept() -> None:
    assert without_texts({"share": 0.5}) == {"share": 0.5, TEXTS_REMOVED: "retention"}
    e = {"top_messages": ["a", {"id": "x"}, None]}
    assert without_texts(e) == e | {TEXTS_REMOVED: "retention"}
