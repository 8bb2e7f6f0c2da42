"""A frozen event-loop clock for tests of timers (nothing timed: time moves when the test moves it)."""

from __future__ import annotations

import asyncio

import pytest


class FrozenClock:
    """Stands in for ``loop.time``: time moves only when the test moves it."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def freeze_loop_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    loop = asyncio.get_running_loop()
    clock = FrozenClock(loop.time())
    monkeypatch.setattr(loop, "time", clock)
    return clock


async def settle() -> None:
    """Let every ready task run (no timers: works on a frozen clock)."""
    for _ in range(50):
        await asyncio.sleep(0)
