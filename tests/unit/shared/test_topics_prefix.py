"""``TW_TOPICS__PREFIX`` is refused at startup when it would make topic names Kafka
refuses (``'x18 bad/'`` made every topic invalid, found only when a topic was created)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import ServiceSettings
from shared.topics import MAX_PREFIX_LENGTH, MAX_TOPIC_NAME_LENGTH, QUEUE_NAME_MAX_LENGTH, Topics


@pytest.mark.parametrize("prefix", ["x18 bad/", "a/b.", "tést.", "with:colon.", "tab\t", "new\nline."])
def test_a_prefix_with_a_character_kafka_refuses_is_refused_naming_the_setting(prefix: str) -> None:
    with pytest.raises(ValidationError, match="TW_TOPICS__PREFIX") as caught:
        Topics(prefix=prefix)
    assert "[a-zA-Z0-9._-]" in str(caught.value)


def test_a_bad_prefix_is_refused_with_the_service_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TW_TOPICS__PREFIX", "x18 bad/")
    with pytest.raises(ValidationError) as caught:
        ServiceSettings()
    assert [e["loc"] for e in caught.value.errors()] == [("topics", "prefix")]


def test_a_prefix_leaves_room_for_the_longest_topic_name() -> None:
    longest_queue = "q" * QUEUE_NAME_MAX_LENGTH
    ok = Topics(prefix="p" * MAX_PREFIX_LENGTH)
    inputs = [ok.news_raw, ok.chat_raw, ok.text_scored, ok.alerts]  # work queues have no DLQ
    names = [*inputs, *(Topics.dlq(n) for n in inputs), ok.queue(longest_queue)]
    assert max(len(n) for n in names) == MAX_TOPIC_NAME_LENGTH == 249
    with pytest.raises(ValidationError, match=f"at most {MAX_PREFIX_LENGTH} characters"):
        Topics(prefix="p" * (MAX_PREFIX_LENGTH + 1))


@pytest.mark.parametrize("prefix", ["", "test-1234.", "staging_eu.", "A.b-C_9."])
def test_a_valid_prefix_is_kept(prefix: str) -> None:
    assert Topics(prefix=prefix).news_raw == f"{prefix}news.raw"
