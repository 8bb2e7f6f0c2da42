"""Record header keys that are not UTF-8, read with backslash escapes instead of crashing
every Kafka consumer in the process (ours and faust's).

A header key is a Kafka ``String``, and aiokafka 0.14 decodes it strictly while it parses a
fetched record batch: its C reader raises ``UnicodeDecodeError``, its pure-Python one
``CorruptRecordException``, out of ``getmany``. No offset moves past the record, so the
classifier (faust: "We experienced a crash!"), the aggregator and the router stopped on the
first such record, again on every restart, and the good records after it were never read.
Nothing in the pipeline needs those bytes (it reads only its own ``tw.*`` headers, by
name), so one producer's odd header must not stop the partition.

After :func:`install` each record batch is still read by aiokafka's fast reader; only a
batch it cannot decode is read again by the pure-Python reader over a buffer whose header
keys decode with ``errors="backslashreplace"`` (``b"tw\\xff"`` reads ``"tw\\\\xff"``). The
record is delivered, processed or dead-lettered like any other, and its dead letter can be
written: a key kept as lone surrogates (``surrogateescape``) would fail the producer's
strict encode instead. Escaped bytes contain a backslash, so such a key never reads as one
of our ``tw.*`` names.

Installed once by the entrypoint (``services.cli.main``), not at import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, SupportsIndex, cast

from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record import memory_records
from aiokafka.record.default_records import _DefaultRecordBatchPy

log = logging.getLogger(__name__)

_FAST_BATCH: Any = memory_records.DefaultRecordBatch
"""aiokafka's own v2 batch reader (the C one where the extension is built)."""


class _EscapedKeys(bytearray):
    """A batch's bytes whose slices decode invalid UTF-8 as backslash escapes: the
    pure-Python reader decodes a header key as ``buffer[a:b].decode("utf-8")``."""

    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        got = super().__getitem__(index)
        return _EscapedKeys(got) if isinstance(index, slice) else got

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return super().decode(encoding, "backslashreplace")


def _undecodable_key(exc: Exception) -> bool:
    """Whether a reader's error is a header key that is not UTF-8 (C: the decode error
    itself; pure Python: a ``CorruptRecordException`` caused by it)."""
    return isinstance(exc, UnicodeDecodeError) or isinstance(exc.__cause__, UnicodeDecodeError)


class TolerantBatch:
    """aiokafka's v2 record batch, read again with escaped header keys from the first
    record its reader cannot decode; everything else is the batch's own."""

    def __init__(self, buffer: memoryview) -> None:
        self._buffer = buffer
        self._batch = _FAST_BATCH(buffer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    def __iter__(self) -> Iterator[Any]:
        # a generator: a Python ``__next__`` call per record parsed at about 60% of the C
        # reader's speed, this at about 90%
        return self._records()

    def __next__(self) -> Any:
        return next(self._batch)  # the fetcher's read of a control batch's marker

    def _records(self) -> Iterator[Any]:
        last = -1  # offset of the last record delivered
        try:
            for record in self._batch:
                last = record.offset
                yield record
        except (UnicodeDecodeError, CorruptRecordException) as exc:
            if not _undecodable_key(exc):
                raise
            log.warning(
                "a record header key is not UTF-8 in the batch at offsets %d-%d; read with backslash escapes",
                self._batch.base_offset,
                self._batch.next_offset - 1,
            )
            escaped = _DefaultRecordBatchPy(bytearray(self._buffer))
            iter(escaped)  # decompresses into a plain bytearray
            escaped._buffer = _EscapedKeys(escaped._buffer)
            yield from (r for r in cast(Iterator[Any], escaped) if r.offset > last)


def installed() -> bool:
    return (
        fetcher.MemoryRecords is memory_records._MemoryRecordsPy and memory_records.DefaultRecordBatch is TolerantBatch
    )


def install() -> None:
    """Make the consumer's fetcher read v2 batches through :class:`TolerantBatch`;
    idempotent. The fetcher then frames a fetch response's batches in Python (aiokafka's
    ``_MemoryRecordsPy``, which builds each batch from the module's ``DefaultRecordBatch``)
    instead of C; the records are still parsed in C."""
    memory_records.DefaultRecordBatch = TolerantBatch
    fetcher.MemoryRecords = memory_records._MemoryRecordsPy
