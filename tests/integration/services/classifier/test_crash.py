"""kill -9 the classifier after it produced a batch but before faust committed
the input offsets, and at a random moment: no event lost, none counted twice.
A graceful stop (SIGTERM) mid-stream dead-letters nothing."""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from news_feed import at_least, counter, produce_news
from services_proc import log_tail, running, start_service
from sqlalchemy import func, select
from tw_testing import wait_until

from services.classifier.config import ClassifierSettings
from shared.db.models import TrendMinute
from shared.kafka import dlq_ops

pytestmark = pytest.mark.integration


async def test_kill_9_classifier_loses_nothing_counts_once(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    n = 2_000
    await produce_news(settings, f"k{unique}-", n)
    counted = counter(sessions, f"k{unique}-")

    env = _env(tiny_models, unique, batch_max=100)
    with running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"):
        crashed = start_service("classifier", settings, tmp_path, "-failpoint", TW_FAILPOINTS="after_publish:3", **env)
        assert await asyncio.to_thread(crashed.wait, 120) == -signal.SIGKILL, log_tail(tmp_path, "classifier-failpoint")
        victim = start_service("classifier", settings, tmp_path, "-random", **env)
        seen = await counted()
        await wait_until(lambda: _above(counted, seen), timeout=90)
        await asyncio.sleep(random.Random(3).uniform(0.1, 0.6))
        victim.send_signal(signal.SIGKILL)
        await asyncio.to_thread(victim.wait, 30)
        with running("classifier", settings, tmp_path, **env):
            await wait_until(lambda: at_least(counted, n), timeout=120)
            await asyncio.sleep(1)  # anything extra would show up now
    assert await counted() == n
    async with sessions() as s:
        total = (
            await s.execute(
                select(func.sum(TrendMinute.count)).where(
                    TrendMinute.entity == "_all", TrendMinute.model_version == "tiny"
                )
            )
        ).scalar()
    assert total is not None and total >= n


async def test_sigterm_mid_stream_dead_letters_nothing_and_loses_nothing(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str
) -> None:
    """Stopping while batches are taken, classified and published: what was not published
    and acknowledged is re-read by the next run, never dead-lettered for the shutdown."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    n = 3_000
    await produce_news(settings, f"t{unique}-", n)
    counted = counter(sessions, f"t{unique}-")

    env = _env(tiny_models, unique, batch_max=20)
    with running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"):
        stopping = start_service("classifier", settings, tmp_path, "-sigterm", **env)
        await wait_until(lambda: _above(counted, 200), timeout=90)
        stopping.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(stopping.wait, 60) == 0, log_tail(tmp_path, "classifier-sigterm")
        stopped_at = await counted()
        with running("classifier", settings, tmp_path, **env):
            await wait_until(lambda: at_least(counted, n), timeout=120)
            await asyncio.sleep(1)  # anything extra would show up now
    assert stopped_at < n, "the stop came too late to test anything"
    assert await counted() == n
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.news_raw) == []
    stop_log = log_tail(tmp_path, "classifier-sigterm", 500_000)
    assert "dead-lettering" not in stop_log
    assert "ProducerClosed" not in stop_log  # nothing was still publishing when the producer closed


@pytest.mark.parametrize("point", ["before_prepare", "after_publish"])
async def test_an_unexpected_error_stops_the_classifier_and_loses_nothing(
    service_settings: Callable[..., Any], tiny_models: Path, sessions: Any, tmp_path: Path, unique: str, point: str
) -> None:
    """A batch that fails in an unforeseen way ends the process with exit code 1 (faust
    alone logged 'Crashed' and kept the process up with nothing consuming); the next
    run re-reads what was not acknowledged. ``after_publish`` fails in the finisher,
    after an await: before, the finisher died while the agent waited to put into the
    full window, and the process stayed up, idle, without a word."""
    settings: ClassifierSettings = service_settings(ClassifierSettings)
    n = 500
    await produce_news(settings, f"e{unique}-", n)
    counted = counter(sessions, f"e{unique}-")
    env = _env(tiny_models, unique, batch_max=50)
    with running("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}"):
        failing = start_service("classifier", settings, tmp_path, "-raise", TW_FAILPOINTS=f"{point}:3:raise", **env)
        code = await asyncio.to_thread(failing.wait, 90)
        failed_log = log_tail(tmp_path, "classifier-raise", 500_000)
        assert code == 1, failed_log
        assert f"classifier stopping on an unexpected error: FailPointError: fail point {point}" in failed_log
        assert await counted() < n
        with running("classifier", settings, tmp_path, **env):
            await wait_until(lambda: at_least(counted, n), timeout=120)
            await asyncio.sleep(1)  # anything extra would show up now
    assert await counted() == n
    assert await dlq_ops.list_entries(settings.kafka, settings.topics.news_raw) == []


def _env(tiny_models: Path, unique: str, *, batch_max: int) -> dict[str, str]:
    """A classifier of its own consumer group over the tiny test models."""
    return {
        "TW_MODELS_DIR": str(tiny_models),
        "TW_CLASSIFIER_GROUP_ID": f"cls-{unique}",
        "TW_CLASSIFIER_BATCH_MAX": str(batch_max),
    }


async def _above(counted: Callable[[], Any], seen: int) -> bool:
    return bool(await counted() > seen)
