"""Stage 1: raw records to contracts, or to dead letters with a reason."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from shared.events import InvalidEvent, RawEvent, Stream, decode_raw
from shared.kafka.dlq import FailedRecord, original_timestamp, record_origin
from shared.kafka.records import InRecord
from shared.topics import Topics

log = logging.getLogger("tonewatch.classifier")


@dataclass(frozen=True)
class Decoded:
    record: InRecord
    event: RawEvent


def raw_streams(topics: Topics) -> dict[str, Stream]:
    """Raw topic name -> stream (built once per batch: the names are computed properties)."""
    return {topics.news_raw: "news", topics.chat_raw: "chat"}


def failed(record: InRecord, error_class: str, reason: str) -> FailedRecord:
    return FailedRecord(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        record.headers,
        error_class,
        reason,
        timestamp_ms=record.timestamp_ms,
    )


def decode_batch(records: Sequence[InRecord], topics: Topics) -> tuple[list[Decoded], list[FailedRecord]]:
    good: list[Decoded] = []
    bad: list[FailedRecord] = []
    streams = raw_streams(topics)
    for rec in records:
        stream = streams.get(rec.topic)
        if stream is None:
            bad.append(failed(rec, "UnknownStream", f"topic {rec.topic} is not a raw stream"))
            continue
        # a replayed dead letter is written at a new place: an id-less record's position id
        # is its first place's, which its dead letters and replays carry in tw.origin (with
        # the digest of the value: a tw.origin not of these bytes is ignored)
        _, partition, offset = record_origin(rec.topic, rec.partition, rec.offset, rec.headers, rec.value)
        try:
            event = decode_raw(
                rec.value,
                stream=stream,
                topic=rec.topic,
                partition=partition,
                offset=offset,
                # a replayed dead letter is written now: its original time is in tw.timestamp
                timestamp_ms=original_timestamp(rec.headers) or rec.timestamp_ms,
            )
        except InvalidEvent as exc:
            bad.append(failed(rec, exc.error_class, exc.reason))
            continue
        except Exception as exc:
            # a bug or a case the contracts do not catch yet: dead-letter this record
            log.exception("record %s could not be decoded; dead-lettered", rec.place)
            bad.append(failed(rec, type(exc).__name__, f"cannot decode: {exc}"))
            continue
        good.append(Decoded(rec, event))
    return good, bad
