"""The alerter's evaluation pass: a key whose evaluation raises (a bug, bad data) is
logged with its key and retried at the sweeps, while the keys after it are evaluated;
an outage (the database unreachable) still stops the pass and retries every key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest

from services.alerter import app
from services.alerter.config import AlerterSettings
from services.alerter.evaluate import Change

POISON = ("news", "acme", "v1")
SOUND = ("news", "zenith", "v1")  # sorted after the poison key


class _Session:
    async def __aenter__(self) -> _Session:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None


class _Producer:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class _Redis:
    async def aclose(self) -> None:
        return None


class _Deliverer:
    lease_s = 2.0  # claims renewed every 0.5 s
    in_flight = frozenset({"al-1"})

    def __init__(self, *_: object, **__: object) -> None:
        pass

    async def drain(self) -> None:
        return None

    counted: ClassVar[list[frozenset[str]]] = []

    def claim_renewed(self, alert_ids: frozenset[str], at: float) -> None:
        if alert_ids is not None:
            self.counted.append(alert_ids)


class _Engine:
    async def dispose(self) -> None:
        return None


class _Sweep:
    def __init__(self, _sessions: object) -> None:
        pass

    async def recent_keys(self) -> set[app.Key]:
        return {POISON, SOUND}


def _evaluator(raise_for: Callable[[app.Key], Exception | None]) -> tuple[type, list[app.Key]]:
    calls: list[app.Key] = []

    class FakeEvaluator:
        def __init__(self, *_: object) -> None:
            self.ahead: set[app.Key] = set()

        async def snapshot(self) -> None:
            return None

        async def evaluate(self, stream: str, entity: str, version: str, _snap: object) -> list[Change]:
            key = (stream, entity, version)
            calls.append(key)
            exc = raise_for(key)
            if exc is not None:
                raise exc
            return [Change("fire", f"alert-{entity}", object())]  # type: ignore[arg-type]

    return FakeEvaluator, calls


@contextlib.asynccontextmanager
async def _running(
    monkeypatch: pytest.MonkeyPatch, evaluator: type, **fakes: Callable[..., Any]
) -> AsyncIterator[None]:
    """``app.run`` with every dependency faked: the LISTEN connection fails (no NOTIFY,
    no catch-up), and the sweep (every 0.2 s) finds the two keys."""

    async def nothing(*_: object, **__: object) -> Any:
        return None

    async def no_connection(*_: object, **__: object) -> Any:
        raise OSError("no LISTEN connection in this test")

    async def no_keys(*_: object, **__: object) -> set[app.Key]:
        return set()

    for name, value in {
        "serve": lambda *_: None,
        "wait_for": nothing,
        "ensure_topics": nothing,
        "make_engine": lambda *_: _Engine(),
        "make_sessionmaker": lambda *_: _Session,
        "make_producer": lambda *_, **__: _Producer(),
        "Deliverer": _Deliverer,
        "Evaluator": evaluator,
        "Sweep": _Sweep,
        "notify_new": nothing,
        "announce_pending": nothing,
        "renew_claims": nothing,
        **fakes,
    }.items():
        monkeypatch.setattr(app, name, value)
    monkeypatch.setattr(app.Redis, "from_url", lambda *_, **__: _Redis())
    monkeypatch.setattr(app.asyncpg, "connect", no_connection)
    monkeypatch.setattr(app.repo, "resolve_uncovered", no_keys)
    monkeypatch.setattr(app.store, "open_alert_keys", no_keys)
    monkeypatch.setenv("TW_ALERTER_SWEEP_INTERVAL_S", "0.2")
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(AlerterSettings(), stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def _until(done: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not done():
            await asyncio.sleep(0.02)


async def test_a_key_whose_evaluation_raises_does_not_hold_up_the_keys_after_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    evaluator, calls = _evaluator(lambda key: ValueError("bad data") if key == POISON else None)
    with caplog.at_level(logging.WARNING, logger="tonewatch.alerter"):
        async with _running(monkeypatch, evaluator):
            # before the fix the poison key, sorted first, aborted every pass: the key
            # after it was never evaluated
            await _until(lambda: calls.count(SOUND) >= 3, timeout_s=5)
    assert calls.count(POISON) >= 3  # retried at the sweeps
    warnings = [r for r in caplog.records if "evaluating" in r.getMessage()]
    assert warnings, "the failure is logged"
    assert "news/acme/v1" in warnings[0].getMessage() and "ValueError: bad data" in warnings[0].getMessage()
    assert warnings[0].exc_info is not None  # the first failure's traceback
    assert all(r.exc_info is None for r in warnings[1:])  # then one line a pass, no traceback again
    assert all("zenith" not in r.getMessage() for r in warnings)


async def test_an_outage_still_stops_the_pass_and_retries_every_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database unreachable: no use trying the other keys, one warning a pass."""
    evaluator, calls = _evaluator(lambda key: ConnectionRefusedError("db down") if key == POISON else None)
    with caplog.at_level(logging.WARNING, logger="tonewatch.alerter"):
        async with _running(monkeypatch, evaluator):
            await _until(lambda: calls.count(POISON) >= 2, timeout_s=5)
    assert SOUND not in calls  # each pass stopped at the outage
    passes = [r.getMessage() for r in caplog.records if "evaluation failed" in r.getMessage()]
    assert passes and all("ConnectionRefusedError" in m for m in passes)
    assert not [r for r in caplog.records if "evaluating" in r.getMessage()]  # no per-key lines


async def test_the_keys_set_aside_are_counted_until_they_evaluate_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tonewatch_alert_keys_failing``: 1 while the poison key raises, 0 once it evaluates."""
    broken = {POISON}
    evaluator, calls = _evaluator(lambda key: ValueError("bad data") if key in broken else None)
    gauge = app.metrics().alert_keys_failing
    async with _running(monkeypatch, evaluator):
        await _until(lambda: calls.count(POISON) >= 2 and gauge._value.get() == 1, timeout_s=5)
        broken.clear()
        seen = calls.count(POISON)
        await _until(lambda: calls.count(POISON) > seen and gauge._value.get() == 0, timeout_s=5)


async def test_a_firing_is_handed_to_the_webhooks_before_the_rest_of_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first key fires; the next key's evaluation is slow (a sweep over thousands of
    keys): the firing's webhooks go out before that, not once the whole pass is over."""
    handed = asyncio.Event()
    seen_during: list[bool] = []

    async def notify(*_: object, **__: object) -> int:
        handed.set()
        return 1

    evaluator, _ = _evaluator(lambda _key: None)  # every key fires

    class SlowSecond(evaluator):  # type: ignore[misc, valid-type]
        async def evaluate(self, stream: str, entity: str, version: str, snap: object) -> list[Change]:
            if (stream, entity, version) == SOUND:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(handed.wait(), timeout=1.5)
                seen_during.append(handed.is_set())
            return await super().evaluate(stream, entity, version, snap)

    async with _running(monkeypatch, SlowSecond, notify_new=notify):
        await _until(lambda: bool(seen_during), timeout_s=5)
    assert seen_during[0], "the webhooks waited for the end of the pass"


async def test_claims_are_renewed_while_a_pass_runs_long(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass stuck on one key for 2 s (longer than the fake deliverer's lease of 2 s / 4):
    the claims of the alerts being delivered are renewed meanwhile, not only between passes."""
    renewed: list[frozenset[str]] = []
    stuck = asyncio.Event()

    async def renew(_sessions: object, ids: frozenset[str]) -> frozenset[str]:
        if stuck.is_set():
            renewed.append(ids)
        return ids

    evaluator, _ = _evaluator(lambda _key: None)

    class Stuck(evaluator):  # type: ignore[misc, valid-type]
        async def evaluate(self, stream: str, entity: str, version: str, snap: object) -> list[Change]:
            stuck.set()
            await asyncio.sleep(2)
            stuck.clear()
            return []

    async with _running(monkeypatch, Stuck, renew_claims=renew):
        await _until(lambda: len(renewed) >= 2, timeout_s=5)
    assert renewed[0] == frozenset({"al-1"})


async def test_a_claim_the_renewal_did_not_extend_is_not_counted_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The renewal extended none of the claims in flight (another alerter took them over):
    the deliverer is told of none, so its lapse guard leaves their attempts to the new owner."""
    _Deliverer.counted.clear()
    tried: list[frozenset[str]] = []

    async def renew(_sessions: object, ids: frozenset[str]) -> frozenset[str]:
        tried.append(ids)
        return frozenset()

    async with _running(monkeypatch, _evaluator(lambda _key: None)[0], renew_claims=renew):
        await _until(lambda: len(tried) >= 2, timeout_s=5)
    assert tried[0] == frozenset({"al-1"})
    assert _Deliverer.counted and all(ids == frozenset() for ids in _Deliverer.counted)
