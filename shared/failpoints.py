"""Fail points for crash tests: ``TW_FAILPOINTS="after_db_commit:3"`` makes the
process SIGKILL itself the 3rd time it passes that point; ``"before_prepare:2:raise"``
raises :class:`FailPointError` there instead (an unexpected error). Empty in production."""

from __future__ import annotations

import os
import signal
from collections import Counter

ACTIONS = ("kill", "raise")


class FailPointError(RuntimeError):
    """Raised at a fail point set to ``raise``."""


class FailPoints:
    def __init__(self, spec: str = "") -> None:
        self._at: dict[str, tuple[int, str]] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            name, _, rest = item.partition(":")
            n, _, action = rest.partition(":")
            if (action or "kill") not in ACTIONS:
                raise ValueError(f"fail point {item!r}: the action must be one of {ACTIONS}")
            self._at[name] = (int(n or 1), action or "kill")
        self._seen: Counter[str] = Counter()

    def hit(self, name: str) -> None:
        if name not in self._at:
            return
        self._seen[name] += 1
        n, action = self._at[name]
        if self._seen[name] != n:
            return
        if action == "raise":
            raise FailPointError(f"fail point {name}")
        os.kill(os.getpid(), signal.SIGKILL)
