"""``Deps.aclose``: every handle is released even when an earlier one fails to close."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from services.api.deps import Deps


class _Closable:
    """Records whether its close method ran; raises when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.closed = False
        self.fail = fail

    async def _close(self) -> None:
        self.closed = True
        if self.fail:
            raise RuntimeError("close failed")

    stop = aclose = dispose = _close


def _deps(producer: _Closable, redis: _Closable, engine: _Closable) -> Deps:
    deps = Deps(
        sessions=cast(Any, None),
        redis=cast(Any, redis),
        registry=cast(Any, None),
        new_producer=cast(Any, None),
        engine=cast(Any, engine),
    )
    deps._producer = cast(Any, producer)
    return deps


def test_a_producer_that_fails_to_stop_still_leaves_redis_and_the_engine_closed() -> None:
    producer, redis, engine = _Closable(fail=True), _Closable(), _Closable()
    with pytest.raises(RuntimeError, match="close failed"):
        asyncio.run(_deps(producer, redis, engine).aclose())
    assert (producer.closed, redis.closed, engine.closed) == (True, True, True)


def test_redis_failing_to_close_still_disposes_of_the_engine() -> None:
    producer, redis, engine = _Closable(), _Closable(fail=True), _Closable()
    with pytest.raises(RuntimeError, match="close failed"):
        asyncio.run(_deps(producer, redis, engine).aclose())
    assert engine.closed


def test_all_closed_without_errors() -> None:
    producer, redis, engine = _Closable(), _Closable(), _Closable()
    deps = _deps(producer, redis, engine)
    asyncio.run(deps.aclose())
    assert (producer.closed, redis.closed, engine.closed) == (True, True, True)
    assert deps._producer is None
