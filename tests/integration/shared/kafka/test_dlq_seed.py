"""A writer reads its DLQ back (``DeadLetterWriter.seed_from``) on the real broker: the
dead letters a previous process wrote for a batch it left uncommitted are not written
again when the batch is re-read."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Sequence

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient

from shared.config import KafkaSettings, ServiceSettings
from shared.kafka import dlq as dlq_mod
from shared.kafka import dlq_ops
from shared.kafka.batches import BatchPolicy, Handler
from shared.kafka.clients import ensure_topics, make_producer
from shared.kafka.dlq import (
    DeadLetterRatioExceeded,
    DeadLetterWriter,
    FailedRecord,
    RatioGuard,
    parse_dlq_headers,
)
from shared.kafka.sink import HandlerFactory, SinkClients, run_sink
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def _dlq_places(kafka_settings: KafkaSettings, topic: str, service: str) -> Counter[tuple[str, int, int]]:
    """How many dead letters ``service`` wrote for each place of ``topic`` (the whole DLQ)."""
    dlq = Topics.dlq(topic)
    tps = await dlq_ops._partitions(kafka_settings, dlq)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_settings.bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        places: Counter[tuple[str, int, int]] = Counter()
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        meta = parse_dlq_headers(list(r.headers or ()))
                        if meta.service == service:
                            places[(meta.original_topic, meta.partition, meta.offset)] += 1
        return places
    finally:
        await consumer.stop()


def _failed(topic: str, partition: int, offset: int) -> FailedRecord:
    return FailedRecord(
        topic,
        partition,
        offset,
        f"k{offset}".encode(),
        f"bad-{partition}-{offset}".encode(),
        [],
        "E",
        "bad",
        timestamp_ms=1_700_000_000_000 + offset,
    )


async def test_a_restarted_writer_does_not_write_the_same_dead_letters_again(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """One writer dead-letters 6 places of two source partitions (keys spread them over the
    DLQ's 3 partitions) and its process stops before the batch is committed; a fresh writer
    (the restarted process) is asked for the same 6 again and 2 new ones: the DLQ holds
    each place once. A writer that does not read back (as every writer did before) writes
    the 6 again."""
    topic = f"t{unique}.scored"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=3)
    before = [_failed(topic, p, o) for p in (0, 1) for o in (10, 11, 12)]
    new = [_failed(topic, 0, 13), _failed(topic, 2, 0)]
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        first = DeadLetterWriter(producer, "aggregator", seed_from=kafka_settings)
        assert [await first.write(f) for f in before] == [True] * 6

        restarted = DeadLetterWriter(producer, "aggregator", seed_from=kafka_settings)
        assert [await restarted.write(f) for f in before + new] == [False] * 6 + [True] * 2
        assert await _dlq_places(kafka_settings, topic, "aggregator") == Counter(
            {(f.topic, f.partition, f.offset): 1 for f in before + new}
        )

        other = DeadLetterWriter(producer, "router", seed_from=kafka_settings)  # another service's are not its own
        assert await other.write(before[0]) is True

        unseeded = DeadLetterWriter(producer, "aggregator")  # no read back: the previous behaviour
        assert [await unseeded.write(f) for f in before] == [True] * 6
        assert set((await _dlq_places(kafka_settings, topic, "aggregator")).values()) == {2, 1}  # duplicates
    finally:
        await producer.stop()


async def test_a_missing_or_empty_dlq_is_read_back_as_nothing(kafka_settings: KafkaSettings, unique: str) -> None:
    """Reading back does not create a missing DLQ topic (the broker may auto-create on
    metadata requests), and the dead letter is written."""
    missing, empty = f"t{unique}.missing", f"t{unique}.empty"
    await ensure_topics(kafka_settings, [Topics.dlq(empty)], partitions=2)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        writer = DeadLetterWriter(producer, "aggregator", seed_from=kafka_settings)
        async with asyncio.timeout(30):
            await writer._seed(missing, 0)
        assert Topics.dlq(missing) not in set(await admin.list_topics())
        assert await writer.write(_failed(empty, 0, 1)) is True
        assert await writer.write(_failed(empty, 0, 1)) is False  # remembered in-process, as before
        assert await _dlq_places(kafka_settings, empty, "aggregator") == Counter({(empty, 0, 1): 1})
    finally:
        await admin.close()
        await producer.stop()


class _Refused(Exception):
    """What the database raises for a record's content (a CHECK constraint)."""

    sqlstate = "23514"


async def test_a_sink_stopped_by_the_guard_mid_halving_does_not_dead_letter_twice_on_restart(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """The guard trips while a halved batch has parts to go (a constraint refusing every
    record): the sink stops, the batch uncommitted. Restarted with the guard relaxed, as the
    README says to, the batch is re-read and every record dead-lettered: each once."""
    topic = f"t{unique}.scored"
    producer = make_producer(kafka_settings, client_id="test")
    await ensure_topics(kafka_settings, [topic], partitions=1)
    await producer.start()
    try:
        for i in range(16):
            await producer.send(topic, f"r{i}".encode(), key=b"k")
        await producer.flush()
    finally:
        await producer.stop()

    def factory(guard: RatioGuard) -> HandlerFactory:
        async def make_handler(clients: SinkClients) -> Handler:
            writer = DeadLetterWriter(clients.producer, "test", guard, stop=clients.stop)
            clients.dead_letter = writer.dead_letter

            async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
                raise _Refused("new row violates check constraint")

            return handle

        return make_handler

    async def run(guard: RatioGuard, stop: asyncio.Event) -> None:
        await run_sink(
            name="test",
            settings=ServiceSettings(environment="test", kafka=kafka_settings),
            topics=[topic],
            group_id=f"g{unique}",
            deps=[],
            make_handler=factory(guard),
            policy=BatchPolicy(max_batch=16, max_wait_ms=2000, initial_backoff_s=0.1),
            stop=stop,
        )

    with pytest.raises(DeadLetterRatioExceeded):  # 4 of 4 dead-lettered, 12 records to go
        async with asyncio.timeout(60):
            await run(RatioGuard(max_ratio=0.5, window=100, min_records=4), asyncio.Event())
    assert await _dlq_places(kafka_settings, topic, "test") == Counter({(topic, 0, o): 1 for o in range(4)})

    stop = asyncio.Event()
    task = asyncio.create_task(run(RatioGuard(max_ratio=1.0), stop))
    try:
        async with asyncio.timeout(60):
            while len(await _dlq_places(kafka_settings, topic, "test")) < 16 and not task.done():
                await asyncio.sleep(0.5)
        await asyncio.sleep(1)  # anything more would land now
    finally:
        stop.set()
        await task
    assert await _dlq_places(kafka_settings, topic, "test") == Counter({(topic, 0, o): 1 for o in range(16)})


async def test_a_failing_replay_at_its_originals_place_is_dead_lettered_after_a_restart(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """The source topic was created again, so a replay (same key, value and ``tw.timestamp``
    as the original) lands at the original's place. It fails again: its dead letter is
    written, not skipped as the original's (that would lose it), and its own is then found."""
    topic = f"t{unique}.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    original = _failed(topic, 0, 5)
    carried = [("tw.timestamp", str(original.timestamp_ms).encode()), ("tw.replays", b"1")]
    replay = FailedRecord(topic, 0, 5, original.key, original.value, carried, "E", "bad", timestamp_ms=1)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        assert await DeadLetterWriter(producer, "classifier", seed_from=kafka_settings).write(original) is True
        restarted = DeadLetterWriter(producer, "classifier", seed_from=kafka_settings)
        assert await restarted.write(replay) is True
        again = DeadLetterWriter(producer, "classifier", seed_from=kafka_settings)
        assert await again.write(replay) is False
        assert await _dlq_places(kafka_settings, topic, "classifier") == Counter({(topic, 0, 5): 2})
    finally:
        await producer.stop()


async def test_a_writer_skips_only_its_own_consumer_groups_dead_letters(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """A shadow classifier (another TW_CLASSIFIER_GROUP_ID) dead-letters the records the
    main group did too. Dead letters without ``tw.group`` (written before it) count as the
    default group's."""
    topic = f"t{unique}.raw"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=2)
    main, legacy = [_failed(topic, 0, o) for o in (1, 2)], [_failed(topic, 1, o) for o in (1, 2)]
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()

    def writer(group: str) -> DeadLetterWriter:
        return DeadLetterWriter(
            producer, "classifier", seed_from=kafka_settings, group=group, default_group="tonewatch-classifier"
        )

    try:
        first = writer("tonewatch-classifier")
        assert [await first.write(f) for f in main] == [True] * 2
        unlabelled = DeadLetterWriter(producer, "classifier")  # as every writer wrote before tw.group
        assert [await unlabelled.write(f) for f in legacy] == [True] * 2

        assert [await writer("tonewatch-classifier").write(f) for f in main + legacy] == [False] * 4
        shadow = writer(f"shadow-{unique}")
        assert [await shadow.write(f) for f in main + legacy] == [True] * 4
        assert [await writer(f"shadow-{unique}").write(f) for f in main + legacy] == [False] * 4
        assert await _dlq_places(kafka_settings, topic, "classifier") == Counter(
            {(f.topic, f.partition, f.offset): 2 for f in main + legacy}
        )
    finally:
        await producer.stop()


async def test_a_restarted_writer_remembers_every_dead_letter_it_read_back(
    kafka_settings: KafkaSettings, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last SEED_TAIL dead letters of each DLQ partition are read back, and all of them
    are remembered: not only WRITTEN_KEPT."""
    monkeypatch.setattr(dlq_mod, "WRITTEN_KEPT", 2)
    monkeypatch.setattr(dlq_mod, "SEED_TAIL", 10)
    topic = f"t{unique}.scored"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    before = [_failed(topic, 0, o) for o in range(6)]
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        first = DeadLetterWriter(producer, "aggregator", seed_from=kafka_settings)
        assert [await first.write(f) for f in before] == [True] * 6
        restarted = DeadLetterWriter(producer, "aggregator", seed_from=kafka_settings)
        assert [await restarted.write(f) for f in before] == [False] * 6
        assert await restarted.write(_failed(topic, 0, 6)) is True
        assert set((await _dlq_places(kafka_settings, topic, "aggregator")).values()) == {1}
    finally:
        await producer.stop()


async def test_a_sink_in_another_consumer_group_dead_letters_what_the_first_group_did(
    kafka_settings: KafkaSettings, unique: str
) -> None:
    """:func:`run_sink` tells the writer its group: a second group of the same service
    reading the same records dead-letters them too, rather than skip them as written."""
    topic = f"t{unique}.scored"
    await ensure_topics(kafka_settings, [topic, Topics.dlq(topic)], partitions=1)
    producer = make_producer(kafka_settings, client_id="test")
    await producer.start()
    try:
        for i in range(4):
            await producer.send(topic, f"r{i}".encode(), key=b"k")
        await producer.flush()
    finally:
        await producer.stop()

    async def make_handler(clients: SinkClients) -> Handler:
        writer = DeadLetterWriter(clients.producer, "test", RatioGuard(max_ratio=1.0), stop=clients.stop)
        clients.dead_letter = writer.dead_letter

        async def handle(records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
            raise _Refused("new row violates check constraint")

        return handle

    async def run_until(group: str, per_place: int) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_sink(
                name="test",
                settings=ServiceSettings(environment="test", kafka=kafka_settings),
                topics=[topic],
                group_id=group,
                deps=[],
                make_handler=make_handler,
                policy=BatchPolicy(max_batch=4, max_wait_ms=500, initial_backoff_s=0.1),
                stop=stop,
            )
        )

        async def done() -> bool:
            places = await _dlq_places(kafka_settings, topic, "test")
            return len(places) == 4 and set(places.values()) == {per_place}

        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(30):
                    while not await done() and not task.done():
                        await asyncio.sleep(0.5)
            await asyncio.sleep(1)  # anything more would land now
        finally:
            stop.set()
            await task

    await run_until(f"g{unique}", 1)
    await run_until(f"shadow{unique}", 2)
    assert await _dlq_places(kafka_settings, topic, "test") == Counter({(topic, 0, o): 2 for o in range(4)})
