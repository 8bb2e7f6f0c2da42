"""Fail points for crash tests: ``TW_FAILPOINTS="after_db_commit:3"`` makes the
process SIGKILL itself the 3rd time it passes that point. Empty in production."""

from __future__ import annotations

import os
import signal
from collections import Counter


class FailPoints:
    def __init__(self, spec: str = "") -> None:
        self._at: dict[str, int] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, _, n = item.partition(":")
            self._at[name] = int(n or 1)
        self._seen: Counter[str] = Counter()

    def hit(self, name: str) -> None:
        if name not in self._at:
            return
        self._seen[name] += 1
        if self._seen[name] == self._at[name]:
            os.kill(os.getpid(), signal.SIGKILL)
