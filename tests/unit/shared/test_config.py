from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from services.alerter.config import AlerterSettings
from services.classifier.config import ClassifierSettings
from shared.config import PLACEHOLDER_SECRETS, PostgresSettings, ServiceSettings, is_placeholder
from shared.topics import Topics


def test_placeholder_password_refused_in_production() -> None:
    with pytest.raises(ValidationError, match="placeholder password"):
        ServiceSettings(environment="production")


@pytest.mark.parametrize("password", ["change-me-to-a-long-random-hex-string", "Change-Me-Too", "changeme"])
def test_a_placeholder_password_is_refused_in_production_whatever_its_case(password: str) -> None:
    """``.env.example``'s POSTGRES_PASSWORD was accepted in production."""
    pg = PostgresSettings(url=SecretStr(f"postgresql+asyncpg://tw:{password}@db:5432/tw"))
    with pytest.raises(ValidationError, match="placeholder password"):
        ServiceSettings(environment="production", postgres=pg)


ENV_EXAMPLE = Path(__file__).parents[3] / ".env.example"
COMPOSE = ENV_EXAMPLE.with_name("docker-compose.yml")
REAL_PG = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:Very-Strong-1@db:5432/tw"))


def _refuses_postgres_password(value: str) -> bool:
    pg = PostgresSettings(url=SecretStr(f"postgresql+asyncpg://tonewatch:{value}@postgres:5432/tonewatch"))
    try:
        ServiceSettings(environment="production", postgres=pg)
    except ValidationError:
        return True
    return False


def _refuses_webhook_secret(value: str) -> bool:
    settings = AlerterSettings(environment="production", postgres=REAL_PG, webhook_secret=SecretStr(value))
    return settings.production_secret_refusal() is not None


def _refuses_pseudonym_key(value: str) -> bool:
    settings = ClassifierSettings(environment="production", postgres=REAL_PG, pseudonym_key=SecretStr(value))
    return settings.production_secret_refusal() is not None


# .env.example's secrets and the check each goes through (docker-compose.yml hands them on so).
ENV_EXAMPLE_SECRETS: dict[str, Callable[[str], bool]] = {
    "POSTGRES_PASSWORD": _refuses_postgres_password,
    "TW_WEBHOOK_SECRET": _refuses_webhook_secret,
    "TW_PSEUDONYM_KEY": _refuses_pseudonym_key,
}


def _env_example() -> dict[str, str]:
    lines = (line.strip() for line in ENV_EXAMPLE.read_text().splitlines())
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_every_secret_of_env_example_is_refused_in_production() -> None:
    """A ``.env`` copied from ``.env.example`` and not edited started in production:
    its placeholders passed every check. A secret added to the example must be checked too."""
    env = _env_example()
    assert env["TW_ENVIRONMENT"] == "production"
    secrets = {name for name in env if any(word in name for word in ("PASSWORD", "SECRET", "KEY", "TOKEN"))}
    assert secrets == set(ENV_EXAMPLE_SECRETS)
    for name, refuses in ENV_EXAMPLE_SECRETS.items():
        assert is_placeholder(env[name]), name
        assert refuses(env[name]), name


def test_compose_hands_the_env_example_secrets_to_the_checked_settings() -> None:
    compose = COMPOSE.read_text()
    assert "TW_POSTGRES__URL: postgresql+asyncpg://tonewatch:${POSTGRES_PASSWORD:" in compose
    assert "TW_ALERTER_WEBHOOK_SECRET: ${TW_WEBHOOK_SECRET:" in compose
    assert compose.count("TW_CLASSIFIER_PSEUDONYM_KEY: ${TW_PSEUDONYM_KEY:") == 2  # CPU and GPU classifiers


def test_compose_checks_postgres_over_tcp_as_the_services_connect() -> None:
    """Over the unix socket, the image's init server (no TCP listener) on a fresh volume
    passed the check: migrate connected over TCP, was refused, and nothing else started."""
    (check,) = re.findall(r"pg_isready[^\"\n]*", COMPOSE.read_text())
    assert " -h 127.0.0.1 " in f"{check} "


def test_compose_says_to_edit_the_secrets_before_starting() -> None:
    head = COMPOSE.read_text().split("\n\n", 1)[0]
    assert "cp .env.example .env && docker compose up" not in head and "replace every secret" in head


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


def test_every_placeholder_secret_is_refused_for_every_secret_in_production() -> None:
    """A long placeholder passed the webhook secret's length check: only the PostgreSQL
    password and the pseudonym key were compared with the placeholder list."""
    long_ones = sorted(p for p in PLACEHOLDER_SECRETS if len(p) >= 16)
    assert long_ones
    for value in long_ones:
        for name, refuses in ENV_EXAMPLE_SECRETS.items():
            assert refuses(value), (name, value)
