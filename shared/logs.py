"""Logging set-up for every entrypoint: one line per record, secrets and
personal data masked, a client library's retry storm collapsed."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable

from shared.redact import redact

_SECRET_IN_URL = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
_KEY_LIKE = re.compile(r"\b(tw_[a-z0-9]{4,8}_)[A-Za-z0-9_-]{16,}\b")


def scrub(message: str) -> str:
    """Mask passwords in URLs, API keys, and personal data."""
    message = _SECRET_IN_URL.sub(r"\1***\3", message)
    message = _KEY_LIKE.sub(r"\1***", message)
    return redact(message)


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rendered = record.getMessage()
        cleaned = scrub(rendered)
        if cleaned != rendered:
            record.msg, record.args = cleaned, None
        return True


# Libraries that log every retry: while Kafka is unreachable aiokafka writes an
# ERROR line per reconnect attempt, 70-90 a second per service (measured).
REPEATING_LOGGERS = ("aiokafka",)
REPEAT_WINDOW_S = 10.0


class RepeatFilter(logging.Filter):
    """Let through the first warning or error of each kind per window and count the
    rest; the next one let through says how many were held back. A kind is the
    logger, the level and the message template (not its arguments)."""

    MAX_KINDS = 1000

    def __init__(
        self,
        prefixes: tuple[str, ...] = REPEATING_LOGGERS,
        window_s: float = REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._prefixes = prefixes
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        # kind -> (when the last record of that kind was let through, records held back since)
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}

    def _watched(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not self._watched(record.name):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            shown_at, held = self._kinds.get(kind, (None, 0))
            if shown_at is not None and now - shown_at < self._window_s:
                self._kinds[kind] = (shown_at, held + 1)
                return False
            if len(self._kinds) >= self.MAX_KINDS:
                self._kinds.clear()
            self._kinds[kind] = (now, 0)
        if held and shown_at is not None:
            record.msg = f"{record.getMessage()} [and {held} more like this in the last {now - shown_at:.0f} s]"
            record.args = None
        return True


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of the record (as the
    standard library's last-resort handler does), not the stream of set-up time."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> object:
        return sys.stderr


def configure(level: str = "INFO", service: str = "tonewatch") -> None:
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    handler.addFilter(RepeatFilter())
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode", "sqlalchemy.engine", "alembic", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
