"""Router service (composition root): chat events -> work-queue topics.

Decide once, record, then send. Each new chat's decision (queue, priority, reason) is
written to the ``routed_events`` ledger, not yet marked sent, in the transaction that
counts it; then it is produced (await acks); then marked sent. A crash before the mark
re-sends the chat on redelivery, to the queue the ledger recorded with the recorded
priority and reason, even if the routing table, a threshold or the chat's scores changed
meanwhile: a chat may reach its queue twice (queue consumers dedupe by id), never a
second queue, and is counted once. A chat marked sent is not sent again, and a batch
retried through a PostgreSQL outage sends nothing until its decisions are recorded."""

from __future__ import annotations

import asyncio
import logging

from services.aggregator.app import decode_scored
from services.router.config import RouterSettings
from services.router.persist import expire_sent, load_routes, mark_sent, record_decisions
from services.router.policy import DEFAULT_ROUTES, ESCALATIONS, HUMAN, RoutingPolicy, decide
from shared import logs
from shared.db.session import make_engine, make_sessionmaker
from shared.events import RoutedChat, ScoredEvent
from shared.failpoints import FailPoints
from shared.kafka.batches import BatchPolicy, Handler, Records
from shared.kafka.clients import ensure_topics
from shared.kafka.dlq import DeadLetterRatioExceeded, DeadLetterWriter, RatioGuard
from shared.kafka.produce import send_all
from shared.kafka.sink import SinkClients, every, run_sink
from shared.metrics import metrics
from shared.startup import kafka_dependency, postgres_dependency, refuse_unmigrated

log = logging.getLogger("tonewatch.router")
SERVICE = "router"


def to_routed(e: ScoredEvent, routes: dict[str, str], policy: RoutingPolicy) -> RoutedChat | None:
    if e.stream != "chat" or e.intent is None:
        return None
    d = decide(e.intent, e.sentiment, routes, policy, e.text)
    return RoutedChat(
        id=e.id,
        conversation_id=e.conversation_id or e.id,
        event_time=e.event_time,
        queue=d.queue,
        intent=e.intent.label,
        confidence=e.intent.confidence,
        priority=d.priority,
        reason=d.reason,
        text=e.text,
        sentiment=e.sentiment.label,
    )


async def run(settings: RouterSettings, stop: asyncio.Event | None = None) -> None:
    engine = make_engine(settings.postgres)
    sessions = make_sessionmaker(engine)
    policy = RoutingPolicy(
        settings.confidence_threshold, settings.ambiguity_margin, settings.priority_negative_prob, settings.anger_score
    )
    routes: dict[str, str] = dict(DEFAULT_ROUTES)
    created: set[str] = set()  # queue topics known to exist
    m = metrics()
    fail = FailPoints(settings.failpoints)

    async def load_and_prepare() -> dict[str, str]:
        """The routing table, with a topic for every queue it can send to (created up front:
        a first produce to a missing topic waits on auto-creation and logs errors)."""
        table = await load_routes(sessions)
        wanted = {settings.topics.queue(q) for q in {*table.values(), HUMAN, ESCALATIONS}}
        if wanted - created:
            await ensure_topics(settings.kafka, sorted(wanted - created))
            created.update(wanted)
        return table

    async def make_handler(clients: SinkClients) -> Handler:
        nonlocal routes
        routes = await load_and_prepare()
        dlq = DeadLetterWriter(clients.producer, SERVICE, RatioGuard(settings.dlq_max_ratio), stop=clients.stop)
        clients.dead_letter = dlq.dead_letter  # records the database refuses: dead-lettered, not retried

        async def handle(records: Records) -> None:
            good, bad = decode_scored(records)
            decided = [r for r in (to_routed(e, routes, policy) for e in good) if r is not None]
            routed = await record_decisions(sessions, decided)  # nothing is sent before this succeeds
            await send_all(
                clients.producer,
                ((settings.topics.queue(r.queue), r.conversation_id.encode(), r.to_bytes()) for r in routed),
            )
            fail.hit("after_queue_produce")  # on the queues, recorded but not marked sent
            await mark_sent(sessions, [r.id for r in routed])
            fail.hit("after_db_commit")  # marked sent, input offsets not yet committed
            m.events_out.labels(SERVICE, "queues").inc(len(routed))
            for f in bad:  # after the effect; a batch retried through an outage asks again
                if await dlq.write(f):
                    m.dead_letters.labels(SERVICE, f.topic, f.error_class).inc()
            bad_places = {(f.partition, f.offset) for f in bad}
            for r in records:
                dlq.guard.record(failed=(r.partition, r.offset) in bad_places)

        return handle

    async def refresh(clients: SinkClients) -> None:
        nonlocal routes
        while not clients.stop.is_set():
            try:
                await asyncio.wait_for(clients.stop.wait(), timeout=settings.routes_refresh_s)
            except TimeoutError:
                try:
                    routes = await load_and_prepare()
                except Exception as exc:  # noqa: BLE001 - keep the last table
                    log.warning("routing table refresh failed: %s", exc)

    async def expire() -> None:
        if n := await expire_sent(sessions, days=settings.ledger_retention_days):
            log.info("retention: deleted %d ledger ids of sent chats", n)

    try:
        await run_sink(
            name=SERVICE,
            settings=settings,
            topics=[settings.topics.text_scored],
            group_id=settings.group_id,
            deps=[kafka_dependency(settings.kafka), postgres_dependency(settings.postgres)],
            make_handler=make_handler,
            policy=BatchPolicy(max_batch=settings.max_batch, max_wait_ms=settings.max_wait_ms),
            background=[refresh, every(settings.retention_interval_s, expire, "retention run")],
            stop=stop,
        )
    finally:
        await engine.dispose()


def main() -> int:
    settings = RouterSettings()
    logs.configure(settings.log_level, SERVICE)
    if refuse_unmigrated(SERVICE, settings.postgres, deadline_s=settings.startup_deadline_s):
        return 2
    try:
        asyncio.run(run(settings))
    except DeadLetterRatioExceeded as exc:
        log.critical("stopping: %s", exc)
        return 1
    return 0
