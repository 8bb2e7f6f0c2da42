"""Spike detection end to end on the real stack."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from alert_scenario import T0, Hook, add_rule, produce, timeline
from integration.services.alerter.helpers import showing_logs
from services_proc import log_tail, running, start_service, stop
from sqlalchemy import func, select, update
from tw_testing import wait_until

from services.aggregator.persist import store_batch
from services.alerter import repo
from services.alerter.backtest import backtest
from services.alerter.config import AlerterSettings
from services.alerter.deliver import SIGNATURE_HEADER, verify
from shared.db.models import Alert, AlertRule, WebhookDelivery
from shared.events import AlertEvent
from shared.kafka.clients import make_consumer
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration


async def alerts_for(sessions: Any, rule_id: int) -> list[Alert]:
    async with sessions() as s:
        return list((await s.execute(select(Alert).where(Alert.rule_id == rule_id).order_by(Alert.fired_at))).scalars())


async def alert_events(
    settings: AlerterSettings, group: str, rule_id: int, expect: int, timeout: float = 30
) -> list[AlertEvent]:
    """Events of one rule on the alerts topic (other rules, e.g. the shipped defaults, fire too)."""
    consumer = make_consumer(settings.kafka, settings.topics.alerts, group_id=group, client_id="test")
    await consumer.start()
    out: list[AlertEvent] = []

    def take(batch: Any) -> None:
        for records in batch.values():
            out.extend(
                e for e in (AlertEvent.model_validate_json(r.value) for r in records if r.value) if e.rule_id == rule_id
            )

    try:
        async with asyncio.timeout(timeout):
            while len(out) < expect:
                take(await consumer.getmany(timeout_ms=500))
        take(await consumer.getmany(timeout_ms=1500))  # nothing more should arrive
    finally:
        await consumer.stop()
    return out


def procs(settings: AlerterSettings, tmp: Path, unique: str, env: dict[str, str]) -> Any:
    class Both:
        def __enter__(self) -> Both:
            self.agg = start_service("aggregator", settings, tmp, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}")
            self.alt = start_service("alerter", settings, tmp, **env)
            return self

        def __exit__(self, *exc: object) -> None:
            stop(self.alt)
            stop(self.agg)

    return Both()


async def test_spike_fires_once_explained_signed_resolved_and_matches_backtest(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"ACME{unique}"
    rule_id = await add_rule(
        sessions,
        f"spike-{unique}",
        entity,
        channels=[
            {"type": "webhook", "url": hook.url("json"), "format": "json"},
            {"type": "webhook", "url": hook.url("slack"), "format": "slack"},
        ],
    )
    with procs(settings, tmp_path, unique, alerter_env(unique)):
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 110, [(60, 65)]))
        with showing_logs(tmp_path, "alerter"):
            alerts = await wait_until(lambda: _resolved(sessions, rule_id), timeout=90)
        await wait_until(lambda: len(hook.seen) >= 2, timeout=30)
        events = await alert_events(settings, f"a-{unique}", rule_id, 2)
    assert len(alerts) == 1
    a = alerts[0]
    assert T0 + timedelta(minutes=60) < a.window_end <= T0 + timedelta(minutes=66)
    e = a.explanation
    assert e["share"] >= 0.5 and e["z"] >= 2.0 and e["volume"] >= 10
    assert 0.1 < e["baseline_mean"] < 0.3
    assert e["top_messages"] and all(
        "fraud" in m["text"] or "scandal" in m["text"] or "collapse" in m["text"] for m in e["top_messages"]
    )
    assert {"fraud", "probe"} & {t["term"] for t in e["top_terms"]}
    # webhooks: one generic, one Slack-compatible, both signed
    names = sorted(name for name, _, _ in hook.seen)
    assert names == ["json", "slack"]
    for name, body, headers in hook.seen:
        assert verify(b"test-secret", body, headers[SIGNATURE_HEADER])
        assert not verify(b"wrong-secret", body, headers[SIGNATURE_HEADER])
        data = json.loads(body)
        assert (data["id"] == a.id) if name == "json" else (entity in data["text"] and a.id in data["text"])
    # the alerts topic saw it open, then resolved
    assert [(x.id, x.status) for x in events] == [(a.id, "open"), (a.id, "resolved")]
    # the alerter's log says it resolved, as it says it fired
    log = (tmp_path / "alerter.log").read_text(errors="replace")
    assert f"alert {a.id} fired: rule spike-{unique}" in log
    assert f"alert {a.id} resolved: rule spike-{unique} entity {entity}" in log
    # a backtest over the same data fires the same alert
    async with sessions() as s:
        rule = await s.get(AlertRule, rule_id)
        fired, _ = await backtest(s, rule, settings, T0, T0 + timedelta(minutes=110))
    assert [f.alert_id for f in fired if f.kind == "fire"] == [a.id]
    assert [f.kind for f in fired] == ["fire", "resolve"]


async def _resolved(sessions: Any, rule_id: int) -> list[Alert] | None:
    return await _all_alerts(sessions, rule_id, lambda a: a.status == "resolved")


async def _all_alerts(sessions: Any, rule_id: int, check: Callable[[Alert], bool]) -> list[Alert] | None:
    """The rule's alerts once there are some and ``check`` holds for each, else None."""
    alerts = await alerts_for(sessions, rule_id)
    return alerts if alerts and all(check(a) for a in alerts) else None


async def test_below_minimum_volume_nothing_fires(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"THIN{unique}"
    rule_id = await add_rule(sessions, f"thin-{unique}", entity, min_volume=60)  # 5-minute windows hold ~40
    with procs(settings, tmp_path, unique, alerter_env(unique)):
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 90, [(60, 65)]))
        await wait_until(lambda: _evaluated_to(sessions, rule_id, T0 + timedelta(minutes=89)), timeout=60)
    assert await alerts_for(sessions, rule_id) == []


async def _evaluated_to(sessions: Any, rule_id: int, t: Any) -> bool:
    from shared.db.models import AlertState

    async with sessions() as s:
        row = (await s.execute(select(AlertState.state).where(AlertState.rule_id == rule_id))).scalar()
    return bool(row and row.get("last_eval") and row["last_eval"] >= t.isoformat())


async def test_cooldown_respected(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"COOL{unique}"
    rule_id = await add_rule(sessions, f"cool-{unique}", entity, cooldown_s=3600, resolve_after_s=300)
    spikes = [(60, 65), (85, 90), (140, 145)]  # the second falls inside the hour of cooldown
    with procs(settings, tmp_path, unique, alerter_env(unique)):
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 170, spikes))
        await wait_until(lambda: _evaluated_to(sessions, rule_id, T0 + timedelta(minutes=169)), timeout=90)
    fired = [a.window_end for a in await alerts_for(sessions, rule_id)]
    assert len(fired) == 2, fired
    assert fired[0] <= T0 + timedelta(minutes=66) and fired[1] >= T0 + timedelta(minutes=140)


async def test_alerter_killed_mid_spike_still_one_alert(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
    only_rule: Callable[[int], Awaitable[None]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"KILL{unique}"
    rule_id = await add_rule(
        sessions, f"kill-{unique}", entity, channels=[{"type": "webhook", "url": hook.url("k"), "format": "json"}]
    )
    await only_rule(rule_id)  # the fail point must meet this rule's firing, not another's
    events = timeline(entity, 100, [(60, 70)])
    half = next(i for i, e in enumerate(events) if e.event_time >= T0 + timedelta(minutes=64))
    agg = start_service("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}")
    try:
        crashing = start_service(
            "alerter", settings, tmp_path, "-crash", **alerter_env(unique, TW_FAILPOINTS="after_alert_commit:1")
        )
        await produce(settings.kafka, settings.topics.text_scored, events[:half])
        code = await asyncio.to_thread(crashing.wait, 90)
        assert code == -signal.SIGKILL, log_tail(tmp_path, "alerter-crash")
        assert len(await alerts_for(sessions, rule_id)) == 1  # committed, not yet published
        with running("alerter", settings, tmp_path, **alerter_env(unique)):
            await produce(settings.kafka, settings.topics.text_scored, events[half:])
            await wait_until(lambda: _evaluated_to(sessions, rule_id, T0 + timedelta(minutes=99)), timeout=60)
            await wait_until(lambda: len(hook.seen) >= 1, timeout=30)
            published = await alert_events(settings, f"k-{unique}", rule_id, 1)
    finally:
        stop(agg)
    alerts = await alerts_for(sessions, rule_id)
    assert len(alerts) == 1 and alerts[0].notified and alerts[0].announced_status is not None
    assert [(p.id, p.status) for p in published if p.status == "open"] == [(alerts[0].id, "open")]
    assert len(hook.seen) == 1


async def test_alerter_killed_after_resolving_still_announces_the_resolution(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
    only_rule: Callable[[int], Awaitable[None]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"RES{unique}"
    rule_id = await add_rule(sessions, f"res-{unique}", entity)
    await only_rule(rule_id)  # the fail point must meet this rule's resolution, not another's
    agg = start_service("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}")
    try:
        crashing = start_service(
            "alerter", settings, tmp_path, "-crash", **alerter_env(unique, TW_FAILPOINTS="after_resolve_commit:1")
        )
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 110, [(60, 65)]))
        code = await asyncio.to_thread(crashing.wait, 90)
        assert code == -signal.SIGKILL, log_tail(tmp_path, "alerter-crash")
        (committed,) = await alerts_for(sessions, rule_id)
        assert committed.status == "resolved" and committed.announced_status != "resolved"  # not yet announced
        with running("alerter", settings, tmp_path, **alerter_env(unique)):
            events = await alert_events(settings, f"r-{unique}", rule_id, 2)
    finally:
        stop(agg)
    (alert,) = await alerts_for(sessions, rule_id)
    assert [(e.id, e.status) for e in events] == [(alert.id, "open"), (alert.id, "resolved")]
    assert alert.notified and alert.announced_status == "resolved"


async def test_acknowledged_and_resolved_by_hand_are_announced_in_order(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"ACK{unique}"
    rule_id = await add_rule(sessions, f"ack-{unique}", entity)
    with procs(settings, tmp_path, unique, alerter_env(unique)):
        # the spike lasts to the end of the data: only a person resolves it
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 70, [(60, 70)]))
        (alert,) = await wait_until(lambda: _announced(sessions, rule_id, "open"), timeout=90)
        for action, status in (("ack", "acknowledged"), ("resolve", "resolved")):
            async with sessions.begin() as s:  # what the API and the CLI do
                await repo.transition(s, alert.id, action)
            await wait_until(lambda status=status: _announced(sessions, rule_id, status), timeout=15)
        events = await alert_events(settings, f"h-{unique}", rule_id, 3)
    assert [(e.id, e.status) for e in events] == [
        (alert.id, "open"),
        (alert.id, "acknowledged"),
        (alert.id, "resolved"),
    ]


async def test_acknowledged_and_resolved_between_two_passes_are_both_announced(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """Acknowledged and then resolved before the outbox's next pass (here in one
    transaction; in life, two clicks within a second, or both during a broker outage):
    the topic still hears open, acknowledged, resolved. Before, it heard only the
    current status, so the acknowledgement was never announced."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"ACKRES{unique}"
    rule_id = await add_rule(sessions, f"ackres-{unique}", entity)
    with procs(settings, tmp_path, unique, alerter_env(unique)):
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 70, [(60, 70)]))
        (alert,) = await wait_until(lambda: _announced(sessions, rule_id, "open"), timeout=90)
        async with sessions.begin() as s:
            await repo.transition(s, alert.id, "ack")
            await repo.transition(s, alert.id, "resolve")
        await wait_until(lambda: _announced(sessions, rule_id, "resolved"), timeout=15)
        events = await alert_events(settings, f"ar-{unique}", rule_id, 3)
    assert [(e.id, e.status) for e in events] == [
        (alert.id, "open"),
        (alert.id, "acknowledged"),
        (alert.id, "resolved"),
    ]


async def _announced(sessions: Any, rule_id: int, status: str) -> list[Alert] | None:
    return await _all_alerts(sessions, rule_id, lambda a: a.announced_status == status)


async def test_redis_down_still_exactly_one_alert(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"NORED{unique}"
    rule_id = await add_rule(sessions, f"nored-{unique}", entity)
    stack = StackSettings()
    with procs(settings, tmp_path, unique, alerter_env(unique)):
        await asyncio.sleep(3)  # let the alerter pass its start-up check while Redis is still up
        await asyncio.to_thread(manager.down, stack, only=["redis"])
        try:
            await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 100, [(60, 70)]))
            await wait_until(lambda: _evaluated_to(sessions, rule_id, T0 + timedelta(minutes=99)), timeout=90)
        finally:
            await asyncio.to_thread(manager.up, stack, only=["redis"])
    assert len(await alerts_for(sessions, rule_id)) == 1
    assert "Redis unavailable for alert dedup" in log_tail(tmp_path, "alerter", 500_000)


async def test_failing_webhook_is_retried_and_does_not_block_others(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"HOOK{unique}"
    hook.statuses["broken"] = 500
    rule_id = await add_rule(
        sessions,
        f"hook-{unique}",
        entity,
        channels=[
            {"type": "webhook", "url": hook.url("broken"), "format": "json"},
            {"type": "webhook", "url": hook.url("fine"), "format": "json"},
        ],
    )
    with procs(settings, tmp_path, unique, alerter_env(unique, TW_ALERTER_WEBHOOK_MAX_ATTEMPTS="3")):
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 80, [(60, 65)]))
        await wait_until(lambda: [n for n, _, _ in hook.seen if n == "fine"], timeout=90)
        await wait_until(lambda: len([n for n, _, _ in hook.seen if n == "broken"]) >= 3, timeout=30)
        await wait_until(lambda: _deliveries(sessions, hook.url("broken"), 3), timeout=15)
    async with sessions() as s:
        rows = (
            (
                await s.execute(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.url.like(f"{hook.base}%"))
                    .order_by(WebhookDelivery.id)
                )
            )
            .scalars()
            .all()
        )
    broken = [r for r in rows if r.url.endswith("/broken")]
    fine = [r for r in rows if r.url.endswith("/fine")]
    assert [(r.attempt, r.status_code, r.delivered) for r in broken] == [
        (1, 500, False),
        (2, 500, False),
        (3, 500, False),
    ]
    assert [(r.attempt, r.delivered) for r in fine] == [(1, True)]
    assert fine[0].created_at <= broken[1].created_at  # the good channel did not wait for the retries
    assert len(await alerts_for(sessions, rule_id)) == 1


async def test_a_stored_webhook_to_an_internal_address_is_refused_and_the_others_delivered(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """A rule whose channels were written past the save-time check (SQL, or saved before
    it) points at the cloud metadata service and at an address outside the alerter's
    allowance (TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32 here): the alerter refuses
    both when connecting (one failed attempt each, not retried) and still delivers the
    allowed channel; the alert is done."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"SSRF{unique}"
    port = hook.base.rsplit(":", 1)[1]
    metadata, other_loopback = "http://169.254.169.254/latest/meta-data/", f"http://127.0.0.2:{port}/internal"
    rule_id = await add_rule(sessions, f"ssrf-{unique}", entity)
    async with sessions.begin() as s:
        await s.execute(
            update(AlertRule)
            .where(AlertRule.id == rule_id)
            .values(channels=[{"url": metadata}, {"url": other_loopback}, {"url": hook.url("fine")}])
        )
    with procs(settings, tmp_path, unique, alerter_env(unique, TW_ALERTER_WEBHOOK_MAX_ATTEMPTS="3")):
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 80, [(60, 65)]))
        with showing_logs(tmp_path, "alerter"):
            await wait_until(lambda: _all_alerts(sessions, rule_id, lambda a: a.notified), timeout=90)
        log = log_tail(tmp_path, "alerter", 200_000)
    async with sessions() as s:
        rows = await s.execute(select(WebhookDelivery).where(WebhookDelivery.url.in_([metadata, other_loopback])))
        refused = {r.url: (r.attempt, r.delivered, r.error) for r in rows.scalars()}
    assert refused == {
        metadata: (1, False, "address not allowed: 169.254.169.254 (link-local, cloud metadata)"),
        other_loopback: (1, False, "address not allowed: 127.0.0.2 (loopback)"),
    }
    assert [name for name, _, _ in hook.seen] == ["fine"]
    assert "webhook refused: address not allowed: 169.254.169.254 (link-local, cloud metadata)" in log
    assert "webhook refused: address not allowed: 127.0.0.2 (loopback) (webhook http://127.0.0.2/…" in log
    assert log.count("webhook refused: address not allowed: ") == 2 and "(link-local, cloud metadata)" in log
    assert "latest/meta-data" not in log and "/internal" not in log
    assert "webhooks may reach these internal networks (TW_ALERTER_WEBHOOK_ALLOWED_NETWORKS): 127.0.0.1/32" in log


async def test_webhook_fires_while_the_alerts_topic_refuses_writes(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """The alerts topic is misconfigured (its largest message is smaller than any alert
    event): the webhook still fires, once; the open event is produced once the topic
    takes it. Before, the webhook waited for the topic, so it never fired."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"TOPIC{unique}"
    rule_id = await add_rule(
        sessions, f"topic-{unique}", entity, channels=[{"type": "webhook", "url": hook.url("w"), "format": "json"}]
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topics.alerts, 1, 1, topic_configs={"max.message.bytes": "200"})])
        with procs(settings, tmp_path, unique, alerter_env(unique)):
            await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 80, [(60, 65)]))
            with showing_logs(tmp_path, "alerter"):
                await wait_until(lambda: len(hook.seen) >= 1, timeout=90)
            await asyncio.sleep(3)  # more passes, each failing to produce: still one webhook
            (alert,) = await alerts_for(sessions, rule_id)
            assert alert.notified and alert.announced_status is None
            log = log_tail(tmp_path, "alerter", 200_000)
            assert "announcing alerts failed (MessageSizeTooLargeError" in log
            assert log.count("announcing alerts failed") <= 2  # one a second, collapsed by the log filter
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, settings.topics.alerts, {"max.message.bytes": "1048588"})]
            )
            events = await alert_events(settings, f"w-{unique}", rule_id, 1, timeout=60)
    finally:
        await admin.close()
    assert len(hook.seen) == 1 and json.loads(hook.seen[0][1])["id"] == alert.id
    assert (events[0].id, events[0].status) == (alert.id, "open")


async def test_webhooks_do_not_wait_for_the_broker(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """The broker goes down; the aggregator's stage (``store_batch``, real PostgreSQL)
    then stores two spikes, one after the other. The first alert's open event waits
    for the broker (up to request_timeout_ms, 30 s); the second spike still gets its
    webhook within seconds, and both events go out once the broker is back. Before,
    evaluation and webhooks waited behind that produce."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    first, second = f"DOWNA{unique}", f"DOWNB{unique}"
    channels = [{"type": "webhook", "url": hook.url("d"), "format": "json"}]
    rule_ids = [await add_rule(sessions, f"down-{e}", e, channels=channels) for e in (first, second)]
    stack = StackSettings()
    alerter = start_service("alerter", settings, tmp_path, **alerter_env(unique))
    try:
        await wait_until(lambda: "alerter running" in log_tail(tmp_path, "alerter"), timeout=60)
        await asyncio.to_thread(manager.down, stack, only=["kafka"])
        try:
            await store_batch(sessions, timeline(first, 80, [(60, 65)]))
            await wait_until(lambda: len(hook.seen) >= 1, timeout=60)
            # the first alert's open event is now waiting for the broker
            await store_batch(sessions, timeline(second, 80, [(60, 65)]))
            await wait_until(lambda: len(hook.seen) >= 2, timeout=15)
            alerts = [a for rule_id in rule_ids for a in await alerts_for(sessions, rule_id)]
            assert [a.announced_status for a in alerts] == [None, None]  # nothing reached the topic
        except AssertionError:
            raise AssertionError(log_tail(tmp_path, "alerter")) from None
        finally:
            up = await asyncio.to_thread(manager.up, stack, only=["kafka"])
        assert up.ok, up
        events = [await alert_events(settings, f"d{i}-{unique}", r, 1, timeout=90) for i, r in enumerate(rule_ids)]
    finally:
        stop(alerter)
    assert sorted(json.loads(body)["id"] for _, body, _ in hook.seen) == sorted(a.id for a in alerts)
    assert [(e[0].id, e[0].status) for e in events] == [(a.id, "open") for a in alerts]


async def test_an_alert_resolves_when_its_entity_goes_quiet_or_its_model_version_is_replaced(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """Two spikes that last to the end of their data fire under model version v1. Then
    the stream goes on for 30 minutes: QUIET gets no more news at all, and REPLACED's
    calm news is scored by a newly promoted model (v2). Both alerts resolve, once their
    keys have had no data for TW_ALERTER_QUIET_AFTER_S (3 s here). Before, each stayed
    open for ever: its (stream, entity, v1) key got no new data, so it was never
    evaluated again."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    quiet, replaced = f"QUIET{unique}", f"REPL{unique}"
    rule_ids = [await add_rule(sessions, f"{e}-rule", e) for e in (quiet, replaced)]
    alerter = start_service("alerter", settings, tmp_path, **alerter_env(unique, TW_ALERTER_QUIET_AFTER_S="3"))
    try:
        for entity in (quiet, replaced):
            await store_batch(sessions, timeline(entity, 70, [(60, 70)]))  # the spike runs to the end
        with showing_logs(tmp_path, "alerter"):
            fired = [await wait_until(lambda r=r: _open(sessions, r), timeout=60) for r in rule_ids]
            later = [
                e.model_copy(
                    update={
                        "id": f"v2-{e.id}",
                        "event_time": e.event_time + timedelta(minutes=70),
                        "sentiment": e.sentiment.model_copy(update={"version": "v2"}),
                    }
                )
                for e in timeline(replaced, 30, [])
            ]
            await store_batch(sessions, later)
            resolved = [await wait_until(lambda r=r: _resolved(sessions, r), timeout=30) for r in rule_ids]
    finally:
        stop(alerter)
    assert [len(a) for a in fired] == [1, 1] and [len(a) for a in resolved] == [1, 1]
    assert all(a[0].model_version == "v1" for a in resolved)


async def _open(sessions: Any, rule_id: int) -> list[Alert] | None:
    return await _all_alerts(sessions, rule_id, lambda a: a.status == "open")


async def test_a_spike_in_a_lagging_feed_fires_within_the_allowed_lateness(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """Two feeds about one entity: a calm one on time, and one that arrives three minutes
    late and carries a spike. Minute by minute, as the data would arrive, with
    TW_ALERTER_ALLOWED_LATENESS_S=240 the spike fires, as the backtest over the same
    minutes does. Without a lateness allowance the alerter had moved past each minute
    before its late data came, and nothing fired."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"LATE{unique}"
    rule_id = await add_rule(sessions, f"late-{unique}", entity, window_s=120, min_volume=10, resolve_after_s=300)
    calm = [e.model_copy(update={"id": f"x-{e.id}"}) for e in timeline(entity, 40, [], per_minute=4)]
    lagging = [e.model_copy(update={"id": f"y-{e.id}"}) for e in timeline(entity, 40, [(25, 32)])]
    lag = timedelta(minutes=3)
    env = alerter_env(unique, TW_ALERTER_ALLOWED_LATENESS_S="240")
    with running("alerter", settings, tmp_path, **env):
        for m in range(40):
            minute = T0 + timedelta(minutes=m)
            now = [e for e in calm if minute <= e.event_time < minute + timedelta(minutes=1)]
            now += [e for e in lagging if minute - lag <= e.event_time < minute - lag + timedelta(minutes=1)]
            await store_batch(sessions, now)
            if m < 4:
                continue
            # the alerter has caught up with this minute, less the allowed lateness (4 minutes)
            with showing_logs(tmp_path, "alerter"):
                await wait_until(
                    lambda m=minute: _evaluated_to(sessions, rule_id, m - timedelta(minutes=4)), timeout=15
                )
        alerts = await alerts_for(sessions, rule_id)
    async with sessions() as s:
        rule = await s.get(AlertRule, rule_id)
        fired, _ = await backtest(s, rule, settings, T0, T0 + timedelta(minutes=40), entity=entity)
    assert [f.alert_id for f in fired if f.kind == "fire"] == [a.id for a in alerts], log_tail(tmp_path, "alerter")
    assert len(alerts) == 1


async def test_webhook_retries_cut_short_by_a_kill_are_resumed_after_a_restart(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """The endpoint fails; the alerter is killed (SIGKILL) between two attempts. Restarted,
    with the endpoint back, it takes the unfinished claim over once the lease has run
    out and delivers the webhook. Before, the firing was marked notified when it was
    handed over, so the webhook was lost with the process."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"KILLHOOK{unique}"
    hook.statuses["k"] = 500
    rule_id = await add_rule(
        sessions, f"killhook-{unique}", entity, channels=[{"type": "webhook", "url": hook.url("k"), "format": "json"}]
    )
    # attempts 10 s apart, so the kill falls between the first two even on a loaded machine;
    # lease 3 x 2 s + (10 + 20) s + (3 + 3) x 5 s (database steps) + 10 s = 76 s
    env = alerter_env(unique, TW_ALERTER_WEBHOOK_MAX_ATTEMPTS="3", TW_ALERTER_WEBHOOK_BACKOFF_S="10")
    await store_batch(sessions, timeline(entity, 70, [(60, 70)]))
    first = start_service("alerter", settings, tmp_path, "-1", **env)
    try:
        await wait_until(lambda: len(hook.seen) >= 1, timeout=60)  # the first attempt failed
        # and is recorded: the kill falls between two attempts (killed as the endpoint
        # answered, the alerter had not yet written the failed attempt down)
        await wait_until(lambda: _failed_attempts(sessions, rule_id, 1), timeout=30)
        first.kill()
        first.wait()
    finally:
        stop(first)
    await asyncio.sleep(1)  # a request sent before the kill is served (and counted) by now
    assert len(hook.seen) == 1
    (alert,) = await alerts_for(sessions, rule_id)
    assert not alert.notified
    hook.statuses["k"] = 200
    second = start_service("alerter", settings, tmp_path, "-2", **env)
    try:
        with showing_logs(tmp_path, "alerter-2"):
            await wait_until(lambda: _all_alerts(sessions, rule_id, lambda a: a.notified), timeout=150)
    finally:
        stop(second)
    assert len(hook.seen) == 2 and json.loads(hook.seen[1][1])["id"] == alert.id
    assert "resuming the webhooks of alert" in log_tail(tmp_path, "alerter-2", 200_000)
    async with sessions() as s:
        rows = (await s.execute(select(WebhookDelivery).where(WebhookDelivery.alert_id == alert.id))).scalars().all()
    assert sorted((r.attempt, r.delivered) for r in rows) == [(1, False), (1, True)]


async def _deliveries(sessions: Any, url: str, n: int) -> bool:
    async with sessions() as s:
        rows = (await s.execute(select(WebhookDelivery).where(WebhookDelivery.url == url))).scalars().all()
    return len(rows) >= n


async def test_two_alerters_on_one_spike_fire_one_alert_and_one_webhook(
    service_settings: Callable[..., Any],
    sessions: Any,
    tmp_path: Path,
    unique: str,
    hook: Hook,
    alerter_env: Callable[..., dict[str, str]],
) -> None:
    """A second alerter (a standby, or one started twice by mistake) evaluates the same
    buckets at the same moments: still one alert, one webhook, one open and one
    resolved event on the topic."""
    settings: AlerterSettings = service_settings(AlerterSettings)
    entity = f"TWIN{unique}"
    rule_id = await add_rule(
        sessions, f"twin-{unique}", entity, channels=[{"type": "webhook", "url": hook.url("t"), "format": "json"}]
    )
    agg = start_service("aggregator", settings, tmp_path, TW_AGGREGATOR_GROUP_ID=f"agg-{unique}")
    first = start_service("alerter", settings, tmp_path, "-1", **alerter_env(unique))
    second = start_service("alerter", settings, tmp_path, "-2", **alerter_env(unique))
    try:
        await produce(settings.kafka, settings.topics.text_scored, timeline(entity, 110, [(60, 65)]))
        with showing_logs(tmp_path, "alerter-1", "alerter-2"):
            alerts = await wait_until(lambda: _resolved(sessions, rule_id), timeout=90)
        await wait_until(lambda: len(hook.seen) >= 1, timeout=30)
        events = await alert_events(settings, f"t-{unique}", rule_id, 2)
        await asyncio.sleep(2)  # a second delivery would arrive by now
        assert first.poll() is None and second.poll() is None
    finally:
        stop(first)
        stop(second)
        stop(agg)
    assert len(alerts) == 1
    assert len(hook.seen) == 1, [name for name, _, _ in hook.seen]
    assert [(x.id, x.status) for x in events] == [(alerts[0].id, "open"), (alerts[0].id, "resolved")]


async def _failed_attempts(sessions: Any, rule_id: int, n: int) -> bool:
    async with sessions() as s:
        q = (
            select(func.count())
            .select_from(WebhookDelivery)
            .join(Alert, Alert.id == WebhookDelivery.alert_id)
            .where(Alert.rule_id == rule_id, WebhookDelivery.delivered.is_(False))
        )
        return int((await s.execute(q)).scalar() or 0) >= n
