"""Router service (composition root): chat events -> work-queue topics.

Decide once, record, then send. Each new chat's decision (queue, priority, reason) is
written to the ``routed_events`` ledger, not yet marked sent, in the transaction that
counts it; then it is produced (await acks); then marked sent. A crash before the mark
re-sends the chat on redelivery, to the queue the ledger recorded with the recorded
priority and reason, even if the routing table, a threshold or the chat's scores changed
meanwhile: a chat may reach its queue twice (queue consumers dedupe by id), never a
second queue, and is counted once. A chat marked sent is not sent again, and a batch
retried through a PostgreSQL outage sends nothing until its decisions are recorded.

A recorded queue whose rule has left the routing table since keeps its decision: its topic
is created before the chat is sent (the table's are created up front; one deleted meanwhile
was waited for for ever on a broker that does not auto-create topics, the batch retried
without end). Where the broker refuses that topic, the chat is dead-lettered with a reason
naming the queue, left unsent in the ledger (a replay, once the topic exists, sends it there);
a retriable CreateTopics error (NOT_CONTROLLER, REQUEST_TIMED_OUT, throttling) is no refusal:
the batch is retried. A send that waits in vain for a queue topic's metadata (the topic was
deleted while the router runs) makes the batch's queue topics unknown again: the retry
creates them.

The same holds when the routing table is loaded (at start and at each refresh): a retriable
error creating the table's queue topics (or human's, escalations') is retried with backoff
within the start-up deadline, the rule kept (its topic left to the first batch sent there);
only a permanent refusal ignores the rule (its intents go to human), or, for human or
escalations, stops the router."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from services.aggregator.app import decode_scored
from services.router.config import RouterSettings
from services.router.persist import expire_sent, load_routes, mark_sent, record_decisions
from services.router.policy import DEFAULT_ROUTES, ESCALATIONS, HUMAN, RoutingPolicy, decide
from shared import logs
from shared.db.session import make_engine, make_sessionmaker
from shared.events import RoutedChat, ScoredEvent
from shared.failpoints import FailPoints
from shared.kafka.batches import BatchPolicy, Handler, Records, RetryableError
from shared.kafka.clients import TopicCreationError, ensure_topics, retriable
from shared.kafka.dlq import DeadLetterRatioExceeded, DeadLetterWriter, FailedRecord, RatioGuard
from shared.kafka.produce import send_all
from shared.kafka.sink import SinkClients, every, run_sink
from shared.metrics import metrics
from shared.startup import kafka_dependency, postgres_dependency, refuse_unmigrated

log = logging.getLogger("tonewatch.router")
SERVICE = "router"
NO_INTENT = "a chat event without an intent (scored with no intent model?): the router cannot route it"
_QUEUE_NAME = re.compile(r"[a-zA-Z0-9._-]+")
"""Kafka's topic name characters: a queue named otherwise can have no topic."""
CREATE_BACKOFF_S = 0.25
CREATE_MAX_BACKOFF_S = 5.0
"""A retriable CreateTopics error at a routing table load: the first wait and the longest
(doubled each try, as start-up waits for its dependencies, within ``startup_deadline_s``)."""
NO_TOPIC: tuple[type[Exception], ...] = (KafkaTimeoutError, UnknownTopicOrPartitionError)
"""A send that waited for a topic's metadata in vain: the topic may have been deleted."""


def no_intent(e: ScoredEvent) -> str | None:
    """Why the router cannot route ``e``: a chat with no intent (skipping one lost the chat
    in silence), or None."""
    return NO_INTENT if e.stream == "chat" and e.intent is None else None


def without_queues(table: Mapping[str, str], refused: set[str]) -> dict[str, str]:
    """``table`` less the rules whose queue cannot be a topic (a name Kafka refuses, or a
    topic the broker would not create): their intents go to human, as an unknown one."""
    return {i: q for i, q in table.items() if q not in refused and _QUEUE_NAME.fullmatch(q)}


def unsendable(
    records: Records,
    good: list[ScoredEvent],
    bad: list[FailedRecord],
    routed: list[RoutedChat],
    refused: dict[str, str],
) -> list[FailedRecord]:
    """The records of the chats ``routed`` to a queue in ``refused`` (queue -> why), as dead
    letters naming the queue: the first record of each chat id (``good`` is ``records`` less
    ``bad``, in order)."""
    bad_places = {(f.partition, f.offset) for f in bad}
    record_of: dict[str, ConsumerRecord[bytes, bytes]] = {}
    for r, e in zip((r for r in records if (r.partition, r.offset) not in bad_places), good, strict=True):
        record_of.setdefault(e.id, r)
    out = []
    for chat in routed:
        if chat.queue in refused and (r := record_of.get(chat.id)) is not None:
            reason = (
                f"the chat's recorded queue {chat.queue!r} has no topic and the broker refused to create it "
                f"({refused[chat.queue]}); the chat stays unsent in the routing ledger, a replay sends it there"
            )
            out.append(
                FailedRecord(
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                    r.value,
                    list(r.headers or ()),
                    "QueueTopicRefused",
                    reason,
                    timestamp_ms=r.timestamp,
                )
            )
    return out


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

    async def load_and_prepare(stop: asyncio.Event) -> dict[str, str]:
        """The routing table, with a topic for every queue it can send to (created up front:
        a first produce to a missing topic waits on auto-creation and logs errors)."""
        loaded = await load_routes(sessions)
        table = without_queues(loaded, set())
        why = "not a Kafka topic name (letters, digits, '.', '_', '-')"
        topic_of = {settings.topics.queue(q): q for q in {*table.values(), HUMAN, ESCALATIONS}}
        if refusals := await create_queue_topics(sorted(set(topic_of) - created), topic_of, stop):
            refusal = TopicCreationError([(t, name, message) for t, (name, message) in refusals.items()])
            refused = {topic_of[t] for t in refusals}
            if refused & {HUMAN, ESCALATIONS}:
                raise refusal
            table = without_queues(table, refused)
            why = f"{why}, or the broker refused its topic: {refusal}"
        warn_ignored({i: q for i, q in loaded.items() if i not in table}, why)
        return table

    async def create_queue_topics(
        missing: list[str], topic_of: Mapping[str, str], stop: asyncio.Event
    ) -> dict[str, tuple[str, str]]:
        """Create the ``missing`` queue topics; the ones the broker refused for good (topic ->
        (error name, message)). A retriable error (NOT_CONTROLLER while the controller moves,
        REQUEST_TIMED_OUT, throttling) is retried with backoff, within the start-up deadline;
        a topic still failing so then is left unknown, its rule kept: the first batch sent to
        its queue creates it (or is retried). A permanent refusal of human or escalations ends
        the waiting at once. So does ``stop`` (SIGTERM): the topics still failing are left
        unknown, as at the deadline, and the service shuts down; before, the retries went on
        up to the start-up deadline (60 s), past the container's grace period (SIGKILL)."""
        refusals: dict[str, tuple[str, str]] = {}
        pending = list(missing)
        start = time.monotonic()
        backoff = CREATE_BACKOFF_S
        attempt = 0
        while pending:
            attempt += 1
            try:
                await ensure_topics(settings.kafka, pending)
            except TopicCreationError as exc:  # the others were created
                if any(t not in topic_of for t, _, _ in exc.errors):
                    raise
                failed = {t: (name, message) for t, name, message in exc.errors}
                created.update(t for t in pending if t not in failed)
                refusals |= {t: e for t, e in failed.items() if not retriable(e[0])}
                pending = [t for t in pending if t in failed and t not in refusals]
                if not pending or {topic_of[t] for t in refusals} & {HUMAN, ESCALATIONS}:
                    break
                elapsed = time.monotonic() - start
                errors = "; ".join(f"{t}: {failed[t][0]}" for t in pending)
                if elapsed + backoff > settings.startup_deadline_s:
                    log.warning(
                        "queue topics not created after %.1fs (%d attempts), their rules kept: the first "
                        "batch sent to them creates them: %s",
                        elapsed,
                        attempt,
                        errors,
                    )
                    break
                log.warning("waiting to create queue topics (attempt %d, retry in %.1fs): %s", attempt, backoff, errors)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                if stop.is_set():  # the topics left unknown, their rules kept, as at the deadline
                    log.warning("stopping: queue topics not created (%d attempts): %s", attempt, errors)
                    break
                backoff = min(backoff * 2, CREATE_MAX_BACKOFF_S)
            else:
                created.update(pending)
                pending = []
        return refusals

    async def refused_queues(routed: list[RoutedChat]) -> dict[str, str]:
        """Create the topic of each queue ``routed`` goes to that is not known to exist (a
        queue recorded before its rule left the table); the queues whose topic the broker
        refused, with why."""
        topic_of = {settings.topics.queue(r.queue): r.queue for r in routed}
        missing = sorted(set(topic_of) - created)
        if not missing:
            return {}
        try:
            await ensure_topics(settings.kafka, missing)
        except TopicCreationError as exc:
            failed = {t for t, _, _ in exc.errors}
            created.update(t for t in missing if t not in failed)
            if any(retriable(name) for t, name, _ in exc.errors if t in topic_of):
                # no refusal: the batch is retried (it was dead-lettered, its offset committed)
                raise RetryableError(f"creating queue topics failed, retrying: {exc}") from exc
            refused = {topic_of[t]: f"{name}: {message}" for t, name, message in exc.errors if t in topic_of}
            if not refused:
                raise
            return refused
        created.update(missing)
        return {}

    ignored: dict[str, str] = {}  # the rules last logged as ignored (intent -> queue)

    def warn_ignored(now: dict[str, str], why: str) -> None:
        """Log the rules left out of the table once, and again when they change."""
        nonlocal ignored
        if now and now != ignored:
            rules = ", ".join(f"{i} -> {q!r}" for i, q in sorted(now.items()))
            log.warning("routing rules ignored, their intents' chats go to %s: %s: %s", HUMAN, rules, why)
        ignored = now

    async def make_handler(clients: SinkClients) -> Handler:
        nonlocal routes
        routes = await load_and_prepare(clients.stop)
        dlq = DeadLetterWriter(clients.producer, SERVICE, RatioGuard(settings.dlq_max_ratio), stop=clients.stop)
        clients.dead_letter = dlq.dead_letter  # records the database refuses: dead-lettered, not retried

        async def handle(records: Records) -> None:
            good, bad = decode_scored(records, refuse=no_intent)
            decided = [r for r in (to_routed(e, routes, policy) for e in good) if r is not None]
            routed = await record_decisions(sessions, decided)  # nothing is sent before this succeeds
            if refused := await refused_queues(routed):
                bad = [*bad, *unsendable(records, good, bad, routed, refused)]
                routed = [r for r in routed if r.queue not in refused]
            try:
                await send_all(
                    clients.producer,
                    ((settings.topics.queue(r.queue), r.conversation_id.encode(), r.to_bytes()) for r in routed),
                )
            except NO_TOPIC:
                # a queue topic deleted since it was created: the retry creates it again (it was
                # known to exist for ever, the send waited on its metadata at every retry)
                created.difference_update(settings.topics.queue(r.queue) for r in routed)
                raise
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
                    routes = await load_and_prepare(clients.stop)
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
