"""Which CreateTopics refusals pass (``shared.kafka.clients.retriable``): the controller moving,
a timeout, throttling; read from the error name ``_refusals`` writes."""

from __future__ import annotations

from shared.kafka.clients import retriable


def test_retriable_reads_the_code_of_the_error_name() -> None:
    assert retriable("NOT_CONTROLLER (error code 41)")
    assert retriable("REQUEST_TIMED_OUT (error code 7)")
    assert retriable("UNKNOWN (error code 89)")  # THROTTLING_QUOTA_EXCEEDED, unknown to aiokafka
    assert not retriable("POLICY_VIOLATION (error code 44)")
    assert not retriable("INVALID_TOPIC_EXCEPTION (error code 17)")
    assert not retriable("PolicyViolation")
