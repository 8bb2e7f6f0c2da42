"""A pause after a failed metadata update in aiokafka's client (every Kafka client
in the process: ours and faust's).

aiokafka 0.14's producer sender, while a partition it holds messages for has no
known leader (as after the broker's controlled shutdown), forces a metadata update
and waits for it, in a loop with no pause. With the broker down each update fails
at once (connection refused), so the loop spins: seen in the classifier as about
5,500 failed updates a second during a 20 s outage, against about 20 a second in
the same outage when no leader was missing. After :func:`install`, a failed update
reports failure only after the client's ``retry_backoff_ms`` (100 ms by default),
which bounds that loop to about 10 attempts a second per client.

Installed once by the entrypoint (``services.cli.main``), not at import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.client import AIOKafkaClient

_MARK = "_tw_backoff_after_failure"


def installed() -> bool:
    return bool(getattr(AIOKafkaClient._metadata_update, _MARK, False))


def install() -> None:
    """Make a failed ``AIOKafkaClient._metadata_update`` wait ``retry_backoff_ms``
    before it returns; idempotent."""
    if installed():
        return
    original: Callable[..., Awaitable[bool]] = AIOKafkaClient._metadata_update

    async def _metadata_update(self: Any, cluster_metadata: Any, topics: Any) -> bool:
        ok = await original(self, cluster_metadata, topics)
        if not ok:
            await asyncio.sleep(self._retry_backoff)
        return ok

    setattr(_metadata_update, _MARK, True)
    AIOKafkaClient._metadata_update = _metadata_update
