"""Connection settings the clients would fail on later with a long traceback (exit 1):
``TW_POSTGRES__URL`` with another driver or a port that is not a number,
``TW_KAFKA__BOOTSTRAP_SERVERS`` with a port that is not one. They are now refused by
the settings, naming the field without its value (exit 2 through the CLI); a libpq URL
(``postgresql://``, ``postgres://``) is taken as the asyncpg URL it means."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr, ValidationError

from shared.config import KafkaSettings, PostgresSettings, ServiceSettings, asyncpg_url

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
    "servers",
    ["127.0.0.1:19092", "a:1,b.example:65535", " a:1 , b:2 ", "kafka", "[::1]:9092", "[::1]", "кафка.рф:9092"],
)
def test_bootstrap_servers_the_client_parses_are_kept(servers: str) -> None:
    assert KafkaSettings(bootstrap_servers=servers).bootstrap_servers == servers


@pytest.mark.parametrize(
    "servers",
    [
        "127.0.0.1:abc",
        "a:1,b:abc",
        "a:0",
        "a:65536",
        "a:",
        "",
        " , ",
        "kafka://a:9092",
        "[::1]x",
        "[nope]:1",
        "a b:1",
        "a/b:1",
        "a:b:1",
    ],
)
def test_bootstrap_servers_with_a_bad_port_are_refused(servers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_KAFKA__BOOTSTRAP_SERVERS", servers)
    with pytest.raises(ValidationError) as info:
        ServiceSettings()
    [error] = info.value.errors()
    assert error["loc"] == ("kafka", "bootstrap_servers") and "host:port, with a port of 1-65535" in error["msg"]


@pytest.mark.parametrize(
    ("servers", "stored"),
    [("a:9092,", "a:9092"), ("a:1,,b:2", "a:1,b:2"), (" a:1 , , b:2 ,", "a:1,b:2"), (",a:1", "a:1")],
)
def test_empty_bootstrap_server_entries_are_dropped(servers: str, stored: str) -> None:
    """Before, a trailing comma was refused (the client failed on the empty entry); now it is dropped."""
    assert KafkaSettings(bootstrap_servers=servers).bootstrap_servers == stored


@pytest.mark.parametrize("servers", ["::1", "a:1,::1", "fe80::1", "::1:9092"])
def test_a_bare_ipv6_bootstrap_server_is_asked_for_its_brackets(servers: str) -> None:
    """Before, ``::1`` was kept, and faust's ``kafka://::1`` failed later."""
    with pytest.raises(ValidationError, match=re.escape("put an IPv6 address in brackets: [::1]:9092")):
        KafkaSettings(bootstrap_servers=servers)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/tonewatch",
            "postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/tonewatch",
        ),
        (f"POSTGRESQL+ASYNCPG://tw:{SECRET}@db/tw", f"postgresql+asyncpg://tw:{SECRET}@db/tw"),
        (f"Postgresql+AsyncPG://tw:{SECRET}@db:5432/tw", f"postgresql+asyncpg://tw:{SECRET}@db:5432/tw"),
        (f"postgresql://tw:{SECRET}@db/tw", f"postgresql+asyncpg://tw:{SECRET}@db/tw"),
        (
            "postgresql+asyncpg://user@/db?host=/var/run/postgresql",
            "postgresql+asyncpg://user@/db?host=/var/run/postgresql",
        ),
        (f"postgresql://tw:{SECRET}@db/tw?sslmode=disable", f"postgresql+asyncpg://tw:{SECRET}@db/tw?ssl=disable"),
        (
            f"postgresql://tw:{SECRET}@db/tw?sslmode=verify-full&command_timeout=30",
            f"postgresql+asyncpg://tw:{SECRET}@db/tw?ssl=verify-full&command_timeout=30",
        ),
        (f"postgresql://tw:{SECRET}@db/tw?ssl=require", f"postgresql+asyncpg://tw:{SECRET}@db/tw?ssl=require"),
        (f"postgresql://tw@db/tw?password={SECRET}", f"postgresql+asyncpg://tw@db/tw?password={SECRET}"),
        ("postgresql://tw:p%2F%23%3F%40%3Aw@db:5432/tw", "postgresql+asyncpg://tw:p%2F%23%3F%40%3Aw@db:5432/tw"),
        ("postgresql://tw:pa:ss@db:5432/tw", "postgresql+asyncpg://tw:pa:ss@db:5432/tw"),
    ],
)
def test_postgres_urls_the_driver_takes(url: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheme in lower case (before, ``POSTGRESQL+ASYNCPG://`` was kept and failed with
    NoSuchModuleError: other code replaces the scheme as written); libpq's sslmode as
    asyncpg's ssl (before: a TypeError traceback at the first connection)."""
    monkeypatch.setenv("TW_POSTGRES__URL", url)
    assert ServiceSettings().postgres.url.get_secret_value() == expected


def test_a_postgres_url_without_a_port_is_taken_by_sqlalchemy_with_5432() -> None:
    from sqlalchemy.engine import make_url

    url = asyncpg_url(f"postgresql://tw:{SECRET}@db/tw?sslmode=require")
    parsed = make_url(url)
    assert parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() == "asyncpg"
    assert parsed.port is None and dict(parsed.query) == {"ssl": "require"}  # asyncpg's default port: 5432


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"postgresql://tw:{SECRET}@db:/tw", "the port after ':' is empty"),
        (f"postgresql://tw:{SECRET}@db/tw?application_name=x", "the query parameter 'application_name' is not one"),
        (f"postgresql://tw:{SECRET}@db/tw?connect_timeout=5", "the query parameter 'connect_timeout' is not one"),
        (f"postgresql://tw:{SECRET}@db/tw?timeout=5", "the query parameter 'timeout' is not one"),
        (f"postgresql://tw:{SECRET}@db/tw?sslmode=maybe", "sslmode (ssl) must be one of allow, disable, prefer"),
        (f"postgresql://tw:{SECRET}@db/tw?sslmode=require&ssl=disable", "a query parameter is given twice"),
        (f"postgresql://tw:{SECRET}@db/tw?command_timeout=soon", "command_timeout must be a number"),
        (f"postgresql://tw:{SECRET}@db/tw?options=-c%20x%3D1", "the query parameter 'options' is not one"),
        (f"postgresql://tw@db/tw?port=0&password={SECRET}", "the port must be a number from 1 to 65535"),
        ("postgresql://tw:se/cret@db:5432/tw", "percent-encode / # ? @ : in the password"),
        ("postgresql://tw:se#cret@db:5432/tw", "percent-encode / # ? @ : in the password"),
        ("postgresql://tw:se?cret@db:5432/tw", "percent-encode / # ? @ : in the password"),
        ("postgresql://tw:12/cret@db:5432/tw", "percent-encode / # ? @ : in the password"),
        ("postgresql://tw:se@cret@db:5432/tw", "percent-encode / # ? @ : in the password"),
    ],
)
def test_postgres_urls_that_fail_at_the_first_connection_are_refused(
    url: str, why: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, each was accepted and failed later: an empty port with a ValueError, a libpq
    parameter with a TypeError traceback; a password with an unencoded / # ? was told that
    the port must be a number (or, ``tw:12/...``, connected to host ``tw`` port 12)."""
    monkeypatch.setenv("TW_POSTGRES__URL", url)
    with pytest.raises(ValidationError) as info:
        ServiceSettings()
    [error] = info.value.errors()
    assert why in error["msg"], error["msg"]
    for secret in ("cret", "tw:", "db"):
        assert secret not in error["msg"].replace("TW_POSTGRES__URL", "")
