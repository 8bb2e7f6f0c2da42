"""Connection settings the clients would fail on later with a long traceback (exit 1):
``TW_POSTGRES__URL`` with another driver or a port that is not a number,
``TW_KAFKA__BOOTSTRAP_SERVERS`` with a port that is not one. They are now refused by
the settings, naming the field without its value (exit 2 through the CLI); a libpq URL
(``postgresql://``, ``postgres://``) is taken as the asyncpg URL it means."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.config import KafkaSettings, PostgresSettings, ServiceSettings

SECRET = "s3cr3t-pw"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"postgresql://tw:{SECRET}@db:5432/tw", f"postgresql+asyncpg://tw:{SECRET}@db:5432/tw"),
        (f"postgres://tw:{SECRET}@db/tw", f"postgresql+asyncpg://tw:{SECRET}@db/tw"),
        (f"PostgreSQL://tw:{SECRET}@db/tw", f"postgresql+asyncpg://tw:{SECRET}@db/tw"),
        (f"postgresql+asyncpg://tw:{SECRET}@[::1]:5432/tw", f"postgresql+asyncpg://tw:{SECRET}@[::1]:5432/tw"),
        (f"postgresql+asyncpg://tw:{SECRET}@/tw?host=/run/pg", f"postgresql+asyncpg://tw:{SECRET}@/tw?host=/run/pg"),
    ],
)
def test_a_postgres_url_is_taken_with_the_asyncpg_driver(
    url: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_POSTGRES__URL", url)
    assert ServiceSettings().postgres.url.get_secret_value() == expected


def test_postgres_settings_alone_still_hold_any_url_for_display() -> None:
    """Only the settings read from the environment are checked (logs tests mask redis:// with it)."""
    assert PostgresSettings(url=SecretStr("redis://:pw@cache/0")).redacted_url() == "redis://:***@cache/0"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"postgresql+psycopg2://tw:{SECRET}@db/tw", "the scheme 'postgresql+psycopg2' is not postgresql+asyncpg://"),
        (f"mysql://tw:{SECRET}@db/tw", "the scheme 'mysql' is not postgresql+asyncpg://"),
        (f"tw:{SECRET}@db/tw", "must be a postgresql+asyncpg://user:password@host:port/database URL"),
        (f"postgresql+asyncpg://tw:{SECRET}@db:notaport/tw", "the port must be a number from 1 to 65535"),
        (f"postgresql://tw:{SECRET}@db:0/tw", "the port must be a number from 1 to 65535"),
        (f"postgresql://tw:{SECRET}@db:70000/tw", "the port must be a number from 1 to 65535"),
    ],
)
def test_a_postgres_url_the_driver_cannot_use_is_refused_without_its_value(
    url: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_POSTGRES__URL", url)
    with pytest.raises(ValidationError) as info:
        ServiceSettings()
    [error] = info.value.errors()
    assert error["loc"] == ("postgres",) and f"TW_POSTGRES__URL{'' if why.startswith('must') else ':'} " in error["msg"]
    assert why in error["msg"]
    assert SECRET not in error["msg"]


@pytest.mark.parametrize(
    "servers", ["127.0.0.1:19092", "a:1,b.example:65535", " a:1 , b:2 ", "kafka", "[::1]:9092", "[::1]", "::1"]
)
def test_bootstrap_servers_the_client_parses_are_kept(servers: str) -> None:
    assert KafkaSettings(bootstrap_servers=servers).bootstrap_servers == servers


@pytest.mark.parametrize(
    "servers",
    ["127.0.0.1:abc", "a:1,b:abc", "a:0", "a:65536", "a:", "", "a:1,", "kafka://a:9092", "[::1]x", "[nope]:1"],
)
def test_bootstrap_servers_with_a_bad_port_are_refused(servers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_KAFKA__BOOTSTRAP_SERVERS", servers)
    with pytest.raises(ValidationError) as info:
        ServiceSettings()
    [error] = info.value.errors()
    assert error["loc"] == ("kafka", "bootstrap_servers") and "host:port, with a port of 1-65535" in error["msg"]
