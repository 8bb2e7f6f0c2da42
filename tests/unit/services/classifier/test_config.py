"""The classifier splits the cores between its concurrent batches."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.classifier import config
from services.classifier.config import ClassifierSettings
from shared.inference.settings import InferenceSettings


def test_concurrent_batches_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 8)
    assert ClassifierSettings(concurrent_batches=2).model_settings().intra_op_threads == 4
    assert ClassifierSettings(concurrent_batches=1).model_settings().intra_op_threads == 8
    assert ClassifierSettings(concurrent_batches=16).model_settings().intra_op_threads == 1


def test_explicit_thread_count_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 8)
    s = ClassifierSettings(concurrent_batches=2, inference=InferenceSettings(intra_op_threads=3))
    assert s.model_settings().intra_op_threads == 3
    assert s.model_settings().device == s.inference.device  # everything else carried over


def test_buckets_of_all_batches_share_one_worker_per_run_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 2)
    s = ClassifierSettings(concurrent_batches=2).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (1, 2)
    monkeypatch.setattr(config, "physical_cores", lambda: 8)
    s = ClassifierSettings(concurrent_batches=2).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (4, 2)
    s = ClassifierSettings(concurrent_batches=1).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (8, 1)
    s = ClassifierSettings(concurrent_batches=2, inference=InferenceSettings(intra_op_threads=1)).model_settings()
    assert s.parallel_buckets == 8


def test_explicit_parallel_buckets_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "physical_cores", lambda: 2)
    monkeypatch.setenv("TW_INFERENCE__PARALLEL_BUCKETS", "1")
    s = ClassifierSettings(concurrent_batches=2).model_settings()
    assert (s.intra_op_threads, s.parallel_buckets) == (1, 1)


def test_the_batch_byte_budget_is_bounded_with_a_clear_error() -> None:
    """Unbounded, 1 TiB passed: faust's stream buffer was then 4 x that x the concurrent
    batches, and a batch is scored in one step."""
    from pydantic import ValidationError

    assert ClassifierSettings(TW_CLASSIFIER_BATCH_MAX_BYTES=str(64 * 1024 * 1024)).batch_max_bytes == 64 * 1024 * 1024
    with pytest.raises(ValidationError, match=r"TW_CLASSIFIER_BATCH_MAX_BYTES\n.*less than or equal to 67108864"):
        ClassifierSettings(TW_CLASSIFIER_BATCH_MAX_BYTES=str(1024**4))


def test_the_status_key_holds_the_topic_prefix_and_the_field_the_group_and_replica() -> None:
    """One key ``tw:classifier:status`` was shared by every deployment, group and replica:
    the last to publish overwrote the others'."""
    assert config.status_key("") != config.status_key("staging.")
    assert config.status_key("staging.").endswith(":staging.")
    fields = {config.status_field(g, r) for g in ("tonewatch-classifier", "shadow") for r in ("a:1", "b:1")}
    assert len(fields) == 4


def test_statuses_older_than_their_ttl_or_unreadable_are_left_out() -> None:
    now = 1_000_000.0
    fields = {
        b"1": b'{"group": "g", "replica": "b:2", "published_at": %d}' % (now - 5),
        b"2": b'{"group": "g", "replica": "a:1", "published_at": %d}' % (now - config.STATUS_TTL_S + 1),
        b"3": b'{"group": "g", "replica": "gone:9", "published_at": %d}' % (now - config.STATUS_TTL_S - 1),
        b"4": b"not json",
        b"5": b'{"group": "g", "replica": "c:3"}',
        b"6": b'{"replica": "d:4", "published_at": %d}' % now,
        b"7": b"[1, 2]",
    }
    assert [s["replica"] for s in config.fresh_statuses(fields, now)] == ["a:1", "b:2"]


def test_a_status_stamped_ahead_of_the_clock_is_stale_beyond_a_small_tolerance() -> None:
    """A killed replica whose host's clock was an hour ahead stayed "fresh" for that hour."""
    now = 1_000_000.0
    fields = {
        b"1": b'{"group": "g", "replica": "ahead-1h:1", "published_at": %d}' % (now + 3600),
        b"2": b'{"group": "g", "replica": "ahead-6s:2", "published_at": %d}' % (now + config.STATUS_AHEAD_S + 1),
        b"3": b'{"group": "g", "replica": "ahead-4s:3", "published_at": %d}' % (now + config.STATUS_AHEAD_S - 1),
        b"4": b'{"group": "g", "replica": "nan:4", "published_at": NaN}',
        b"5": b'{"group": "g", "replica": "inf:5", "published_at": Infinity}',
    }
    assert [s["replica"] for s in config.fresh_statuses(fields, now)] == ["ahead-4s:3"]


def test_redis_time_is_read_in_seconds() -> None:
    assert config.redis_seconds((1_700_000_000, 250_000)) == 1_700_000_000.25


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e12", "315576001"])
def test_a_non_finite_or_absurd_future_skew_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """inf or 1e12 seconds was accepted, then every valid record was dead-lettered with
    OverflowError (received + skew passed the calendar's end)."""
    monkeypatch.setenv("TW_CLASSIFIER_MAX_FUTURE_SKEW_S", value)
    with pytest.raises(ValidationError, match="TW_CLASSIFIER_MAX_FUTURE_SKEW_S"):
        ClassifierSettings()


@pytest.mark.parametrize(("value", "expected"), [("0", 0.0), ("300", 300.0), ("315576000", 315_576_000.0)])
def test_a_future_skew_up_to_ten_years_is_accepted(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: float
) -> None:
    monkeypatch.setenv("TW_CLASSIFIER_MAX_FUTURE_SKEW_S", value)
    assert ClassifierSettings().max_future_skew_s == expected
    assert "at most 10 years" in (ClassifierSettings.model_fields["max_future_skew_s"].description or "")
