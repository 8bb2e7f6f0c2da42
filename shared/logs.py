"""Logging set-up for every entrypoint: one line per record, secrets and
personal data masked."""

from __future__ import annotations

import logging
import re

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


def configure(level: str = "INFO", service: str = "tonewatch") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "faust", "mode", "sqlalchemy.engine", "alembic", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
