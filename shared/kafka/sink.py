"""Runtime shared by the sink services (aggregator, router, alerter): start-up
waits, clients, signal handling, the batch loop, lag metrics, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.config import ServiceSettings
from shared.kafka.batches import BatchPolicy, DeadLetterHook, Handler, run_batches
from shared.kafka.clients import ensure_with_dlqs, make_consumer, make_producer
from shared.kafka.dlq import DeadLetterWriter
from shared.metrics import metrics, serve
from shared.startup import Dependency, wait_for

log = logging.getLogger(__name__)


@dataclass
class SinkClients:
    consumer: AIOKafkaConsumer
    producer: AIOKafkaProducer
    stop: asyncio.Event
    dead_letter: DeadLetterHook | None = None
    """Set by the handler factory (``DeadLetterWriter.dead_letter``): a batch the database
    refuses for a record's content is then handled in halves and the record dead-lettered,
    instead of being retried for ever as an outage. :func:`run_sink` has that writer read
    its DLQ back (:meth:`DeadLetterWriter.seed_from`), so the dead letters of a batch left
    uncommitted by the previous process of its consumer group are not written again when
    it is re-read."""


HandlerFactory = Callable[[SinkClients], Awaitable[Handler]]
Background = Callable[[SinkClients], Coroutine[None, None, None]]


def every(interval_s: float, job: Callable[[], Awaitable[None]], what: str) -> Background:
    """A background task for :func:`run_sink` that runs ``job`` now and then every
    ``interval_s`` until the sink stops; a failure is logged (``<what> failed``) and
    the job tried again next round."""

    async def run(clients: SinkClients) -> None:
        while not clients.stop.is_set():
            try:
                await job()
            except Exception as exc:  # noqa: BLE001 - tried again next round
                log.warning("%s failed: %s", what, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(clients.stop.wait(), timeout=interval_s)

    return run


async def _report_lag(name: str, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
    gauge = metrics().consumer_lag
    while not stop.is_set():
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            with contextlib.suppress(Exception):
                position = await consumer.position(tp)
                if high is not None:
                    gauge.labels(name, tp.topic, str(tp.partition)).set(max(0, high - position))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)


def _default_group(settings: ServiceSettings) -> str | None:
    """The service's default consumer group (its settings' ``group_id`` default), whose
    dead letters are those written before they named their group."""
    field = type(settings).model_fields.get("group_id")
    default = None if field is None else field.default
    return default if isinstance(default, str) else None


async def run_sink(
    *,
    name: str,
    settings: ServiceSettings,
    topics: Sequence[str],
    group_id: str,
    deps: Sequence[Dependency],
    make_handler: HandlerFactory,
    policy: BatchPolicy,
    background: Sequence[Background] = (),
    stop: asyncio.Event | None = None,
) -> None:
    """Run a sink until SIGTERM/SIGINT (or ``stop`` is set)."""
    serve(settings.metrics_port)
    await wait_for(deps, deadline_s=settings.startup_deadline_s)
    await ensure_with_dlqs(settings.kafka, list(topics))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    consumer = make_consumer(
        settings.kafka, *topics, group_id=group_id, client_id=name, max_poll_records=policy.max_batch
    )
    producer = make_producer(settings.kafka, client_id=name)
    await producer.start()
    await consumer.start()
    clients = SinkClients(consumer, producer, stop)
    tasks = [asyncio.create_task(_report_lag(name, consumer, stop))]
    tasks += [asyncio.create_task(job(clients)) for job in background]
    retries = metrics().infra_retries.labels(name)
    try:
        handler = await make_handler(clients)
        writer = getattr(clients.dead_letter, "__self__", None)
        if isinstance(writer, DeadLetterWriter):  # the handler's own writer (dlq.write) is the same
            writer.seed_from(settings.kafka, group=group_id, default_group=_default_group(settings))
        log.info("%s consuming %s as group %s", name, ", ".join(topics), group_id)
        await run_batches(
            consumer,
            handler,
            policy=policy,
            stop=stop,
            on_retry=lambda _e: retries.inc(),
            dead_letter=clients.dead_letter,
        )
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
