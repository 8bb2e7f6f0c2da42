"""The classifier keeps the cycle collector off its hot path, its consumer group notices a
dead replica soon, and it refuses a database not migrated for this release."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from typing import Any, cast

import pytest
from pydantic import SecretStr

from services.classifier.app import RunState, Watchlist, _Worker, build_app, load_watchlist, main, tune_gc
from services.classifier.classify import Classify
from services.classifier.config import ClassifierSettings
from shared.config import PostgresSettings
from shared.db.migrate import schema_refusal
from shared.entities import EntityMatcher, WatchedEntity


def test_tune_gc_freezes_startup_objects_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_dead_replica_loses_its_partitions_after_the_configured_session_timeout() -> None:
    settings = ClassifierSettings(session_timeout_s=12)
    app = build_app(settings, cast(Classify, None), RunState())
    assert app.conf.broker_session_timeout == 12  # faust's own default is 60 s
    assert ClassifierSettings().session_timeout_s == 15


def test_the_worker_writes_no_terminal_escapes_into_the_log() -> None:
    app = build_app(ClassifierSettings(), cast(Classify, None), RunState())
    loop = asyncio.new_event_loop()
    try:
        worker = _Worker(app, loglevel="INFO", loop=loop, quiet=True)
        assert worker.spinner is None
    finally:
        loop.close()


def test_the_classifier_refuses_the_development_pseudonym_key_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the public default key, an email's pseudonym could be found by hashing
    candidate addresses: production must set its own."""
    monkeypatch.setenv("TW_ENVIRONMENT", "production")
    monkeypatch.setenv("TW_POSTGRES__URL", "postgresql+asyncpg://tw:Strong-pw-1@127.0.0.1:1/tw")  # never reached
    monkeypatch.delenv("TW_CLASSIFIER_PSEUDONYM_KEY", raising=False)
    monkeypatch.setattr("services.classifier.app.logs.configure", lambda *_: None)  # leave the test's logging
    assert main() == 2


@pytest.mark.parametrize(
    "key", ["change-me-three", "", "   ", "fifteen-chars-k", "change-me-to-a-long-random-hex-string"]
)
def test_the_classifier_refuses_a_placeholder_blank_or_short_pseudonym_key_in_production(
    key: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``.env.example``'s placeholder, a blank key and a 15-character one were accepted:
    only the development default was refused."""
    monkeypatch.setenv("TW_ENVIRONMENT", "production")
    monkeypatch.setenv("TW_POSTGRES__URL", "postgresql+asyncpg://tw:Strong-pw-1@127.0.0.1:1/tw")  # never reached
    monkeypatch.setenv("TW_CLASSIFIER_PSEUDONYM_KEY", key)
    monkeypatch.setattr("services.classifier.app.logs.configure", lambda *_: None)
    monkeypatch.setattr("services.classifier.app.serve", _never_reached)
    assert main() == 2
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "TW_CLASSIFIER_PSEUDONYM_KEY" in line and (not key.strip() or key not in line)


def test_a_long_enough_pseudonym_key_passes_the_production_check() -> None:
    pg = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:Strong-pw-1@127.0.0.1:1/tw"))
    settings = ClassifierSettings(environment="production", postgres=pg, pseudonym_key=SecretStr("k" * 16))
    assert settings.production_secret_refusal() is None


def _never_reached(*_: object) -> None:
    raise AssertionError("the classifier went on starting")


def test_a_database_not_at_this_releases_revision_is_refused_with_what_to_run() -> None:
    """Not migrated, the agent crashed on the missing entities table every 5 s while the
    process stayed up consuming nothing, and exited 0 on SIGTERM."""
    assert schema_refusal("0008", ["0008"]) is None
    missing = schema_refusal(None, ["0008"])
    assert missing == "the database is not migrated (this release needs 0008): run tonewatch migrate"
    assert schema_refusal("0007", ["0008"]) == (
        "the database is at revision 0007 (this release needs 0008): run tonewatch migrate"
    )


async def test_the_first_watchlist_waits_for_postgresql_and_raises_anything_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outcomes: list[BaseException | list[WatchedEntity]] = [
        ConnectionRefusedError("connect call failed"),
        ConnectionRefusedError("connect call failed"),
        [WatchedEntity("ACME", "Acme plc", aliases=("Acme",))],
    ]

    async def load(_: object) -> list[WatchedEntity]:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def fingerprint(_: object) -> str:
        return "unchanged"

    monkeypatch.setattr("services.classifier.app.load_active", load)
    monkeypatch.setattr("services.classifier.app.watchlist_fingerprint", fingerprint)
    matcher = await load_watchlist(Watchlist(cast(Any, None)), first_backoff_s=0.01)
    assert matcher.tag("Acme warns") == ["ACME", "_all"] and outcomes == []

    outcomes.append(RuntimeError('relation "entities" does not exist'))
    with pytest.raises(RuntimeError, match="entities"):  # for the agent's guard: stop, loudly
        await load_watchlist(Watchlist(cast(Any, None)), first_backoff_s=0.01)


async def test_the_matcher_is_rebuilt_in_a_worker_thread_only_when_the_watchlist_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 10,000-entity matcher took 0.6-1.4 s to build, on the event loop, at every refresh
    (15 s) even when nothing had changed."""
    fingerprint = ["v1"]
    rows = [WatchedEntity("ACME", "Acme plc", aliases=("Acme",))]
    loads: list[int] = []
    built_off_the_loop: list[bool] = []

    async def current(_: object) -> str:
        return fingerprint[0]

    async def load(_: object) -> list[WatchedEntity]:
        loads.append(len(rows))
        return list(rows)

    class Spy(EntityMatcher):
        def __init__(self, entities: list[WatchedEntity]) -> None:
            built_off_the_loop.append(threading.current_thread() is not threading.main_thread())
            super().__init__(entities)

    watchlist = Watchlist(cast(Any, None))  # starts with an empty matcher
    monkeypatch.setattr("services.classifier.app.watchlist_fingerprint", current)
    monkeypatch.setattr("services.classifier.app.load_active", load)
    monkeypatch.setattr("services.classifier.app.EntityMatcher", Spy)
    first = await watchlist.refresh()
    assert await watchlist.refresh() is first and await watchlist.refresh() is first
    assert loads == [1] and built_off_the_loop == [True]

    fingerprint[0] = "v2"
    rows.append(WatchedEntity("BETA", "Beta Corp", aliases=("Beta",)))
    second = await watchlist.refresh()
    assert second is not first and second.tag("Beta and Acme") == ["BETA", "ACME", "_all"]
    assert await watchlist.refresh() is second
    assert loads == [1, 2] and built_off_the_loop == [True, True]
