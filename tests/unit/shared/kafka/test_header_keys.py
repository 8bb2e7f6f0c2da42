"""A record whose header key is not UTF-8 is delivered, with the key's bad bytes as
backslash escapes, and the records on both sides of it too (it stopped every consumer)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.consumer import fetcher
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record import memory_records
from aiokafka.record.default_records import (
    DefaultRecordBatchBuilder,
    _DefaultRecordBatchBuilderPy,
    _DefaultRecordBatchPy,
)
from aiokafka.structs import TopicPartition

from shared.kafka import header_keys

BAD = b"tw\xff\xfekey"
GZIP = 1


class _BadKey(str):
    """A header key that the (pure-Python) builder writes as bytes that are not UTF-8."""

    def encode(self, *_: Any, **__: Any) -> bytes:  # type: ignore[override]
        return BAD


def _batch(compression: int = 0, base_offset: int = 0) -> bytes:
    builder = _DefaultRecordBatchBuilderPy(2, compression, 0, -1, -1, -1, 1 << 20)
    builder.append(0, 1000, b"k", b"one", [("ct", b"json")])
    builder.append(1, 1001, b"k", b"two", [(_BadKey("x"), b"v"), ("ct", b"json")])
    builder.append(2, 1002, b"k", b"three", [])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base_offset)
    return bytes(data)


def _drain(data: bytes, check_crcs: bool = True) -> tuple[list[Any], int]:
    """The records the consumer's fetcher makes of one fetch response, and the offset it
    fetches next."""
    records = PartitionRecords(TopicPartition("t", 0), fetcher.MemoryRecords(data), None, 0, None, None, check_crcs, 0)
    return list(records), records.next_fetch_offset


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # restored after the test, as aiokafka ships them
    monkeypatch.setattr(fetcher, "MemoryRecords", fetcher.MemoryRecords)
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", memory_records.DefaultRecordBatch)
    header_keys.install()
    yield


def test_aiokafka_alone_stops_at_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    # what the patch is for: if this passes, aiokafka decodes tolerantly itself. Both of the
    # patch's settings are undone here: a test of services.cli.main() earlier in the run installs it
    monkeypatch.setattr(fetcher, "MemoryRecords", memory_records._MemoryRecordsPy)
    monkeypatch.setattr(memory_records, "DefaultRecordBatch", header_keys._FAST_BATCH)
    with pytest.raises((UnicodeDecodeError, CorruptRecordException)):
        _drain(_batch())


@pytest.mark.parametrize("compression", [0, GZIP])
def test_the_record_and_its_neighbours_are_delivered(patched: None, compression: int) -> None:
    got, next_offset = _drain(_batch(compression) + _batch(compression, base_offset=3))
    assert [r.value for r in got] == [b"one", b"two", b"three"] * 2
    assert [r.offset for r in got] == list(range(6)) and next_offset == 6
    assert got[1].headers == (("tw\\xff\\xfekey", b"v"), ("ct", b"json"))
    assert got[0].headers == (("ct", b"json"),) and got[2].headers == ()


def test_the_pure_python_reader_is_covered_too(patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # AIOKAFKA_NO_EXTENSIONS: the reader wraps the decode error in CorruptRecordException
    monkeypatch.setattr(header_keys, "_FAST_BATCH", _DefaultRecordBatchPy)
    got, next_offset = _drain(_batch())
    assert [r.value for r in got] == [b"one", b"two", b"three"] and next_offset == 3
    assert got[1].headers[0] == ("tw\\xff\\xfekey", b"v")


def test_the_escaped_key_can_be_written_again(patched: None) -> None:
    # a dead letter carries the record's headers: the producer encodes keys strictly
    (_, bad, _), _ = _drain(_batch())
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    assert builder.append(0, 1, bad.key, bad.value, list(bad.headers)) is not None


def test_a_batch_without_odd_keys_is_read_by_aiokafka_alone(patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fallback(*_: Any) -> None:
        raise AssertionError("read again")

    monkeypatch.setattr(header_keys, "_DefaultRecordBatchPy", no_fallback)
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, 1 << 20)
    for i in range(3):
        builder.append(i, 1000 + i, None, b"v%d" % i, [("ct", b"json")])
    got, next_offset = _drain(bytes(builder.build()))
    assert [r.value for r in got] == [b"v0", b"v1", b"v2"] and next_offset == 3


def test_other_corruption_is_still_an_error(patched: None) -> None:
    data = bytearray(_batch())
    records_start = 61  # the v2 batch header's size
    data[records_start] = 0x7F  # the first record's length varint: far past its end
    with pytest.raises(CorruptRecordException, match="record") as raised:
        _drain(bytes(data), check_crcs=False)  # past the CRC check, into the reader
    assert not isinstance(raised.value.__cause__, UnicodeDecodeError)


def test_install_is_idempotent_and_main_installs_it(patched: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.client import AIOKafkaClient

    import services.cli

    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", AIOKafkaClient._metadata_update)  # main patches it too
    header_keys.install()
    assert header_keys.installed()
    monkeypatch.setattr(fetcher, "MemoryRecords", memory_records.MemoryRecords)  # as aiokafka ships it
    assert not header_keys.installed()
    monkeypatch.setattr(services.cli, "app", lambda: None)
    services.cli.main()
    assert header_keys.installed()
