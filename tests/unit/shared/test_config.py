from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.config import PostgresSettings, ServiceSettings
from shared.topics import Topics


def test_placeholder_password_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="placeholder password"):
        ServiceSettings(environment="production")


def test_real_password_accepted_in_production() -> None:
    pg = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:Very-Strong-1@db:5432/tw"))
    assert ServiceSettings(environment="production", postgres=pg).environment == "production"


def test_redacted_url_hides_password() -> None:
    pg = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:hunter2@db:5432/tw"))
    assert "hunter2" not in pg.redacted_url() and "***" in pg.redacted_url()
    assert "hunter2" not in repr(pg)


def test_env_is_read_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_KAFKA__BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("TW_TOPICS__PREFIX", "staging.")
    s = ServiceSettings()
    assert s.kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert s.topics.news_raw == "staging.news.raw"


def test_topics() -> None:
    t = Topics()
    assert (t.news_raw, t.chat_raw, t.text_scored, t.alerts) == ("news.raw", "chat.raw", "text.scored", "alerts")
    assert t.queue("cards") == "chat.queue.cards"
    assert Topics.dlq("news.raw") == "news.raw.dlq"
    with pytest.raises(ValueError, match="unknown stream"):
        t.raw("weather")
