"""Settings base classes. The environment is read only at the entrypoint.

Every service has one frozen settings class derived from :class:`ServiceSettings`;
its fields are documented so the configuration reference can be generated
(``tonewatch config docs``). Nested fields use ``__``: ``TW_KAFKA__BOOTSTRAP_SERVERS``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import Topics

Environment = Literal["development", "test", "production"]
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "tonewatch",
        "changeme",
        "password",
        "postgres",
        # .env.example's
        "change-me-to-a-long-random-hex-string",
        "change-me-too",
        "change-me-three",
    }
)
"""Secrets production refuses: common defaults and every secret of ``.env.example``
(a test keeps them in step), which a copied ``.env`` keeps until someone edits it."""


def is_placeholder(secret: str) -> bool:
    """True for a member of :data:`PLACEHOLDER_SECRETS`, whatever its case or surrounding blanks."""
    return secret.strip().lower() in PLACEHOLDER_SECRETS


class KafkaSettings(BaseModel):
    """Kafka connection."""

    model_config = ConfigDict(frozen=True)

    bootstrap_servers: str = Field(default="127.0.0.1:19092", description="Comma-separated host:port list.")
    client_id_prefix: str = Field(default="tonewatch", description="Prefix of every client id.")
    request_timeout_ms: int = Field(default=30_000, ge=1_000, description="Client request timeout.")

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        """Refuse a list the Kafka client would fail on later with a traceback (``host:abc``:
        a ``ValueError`` from deep inside the client) or take for another host (a
        ``kafka://`` prefix). An empty entry (a trailing comma) is dropped: the client
        failed on it. The message leaves the value out: it may carry credentials."""
        servers = [server.strip() for server in value.split(",")]
        given = [server for server in servers if server]
        for server in given:
            if _is_ipv6(server):  # its last colon read as a port's (faust's kafka://::1 fails later)
                raise ValueError("put an IPv6 address in brackets: [::1]:9092 (with its port)")
            if not _is_server(server):
                raise ValueError(
                    "each comma-separated server must be host:port, with a port of 1-65535 "
                    "(an IPv6 address in brackets: [::1]:9092)"
                )
        if not given:
            raise ValueError("each comma-separated server must be host:port, with a port of 1-65535 (none is given)")
        return value if len(given) == len(servers) else ",".join(given)


_HOST = re.compile(r"[^\s/\[\]:,]+")
"""A host name (any script: the client takes ``кафка.рф``) or IPv4 address as a bootstrap
server may give it: no blank, ``/`` (``kafka://``), bracket, colon or comma."""


def _port_ok(port: str) -> bool:
    return port.isascii() and port.isdigit() and 1 <= int(port) <= 65535


def _is_server(server: str) -> bool:
    """Whether ``server`` is ``host``, ``host:port``, ``[ipv6]`` or ``[ipv6]:port`` (how the
    Kafka client parses it; a port left out is 9092), with a port of 1-65535. A bare IPv6
    address is not: :class:`KafkaSettings` asks for its brackets."""
    if server.startswith("["):
        address, bracket, port = server[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and _port_ok(port[1:]))):
            return False
        return _is_ipv6(address)
    host, colon, port = server.rpartition(":")
    if not colon:
        host = port
    return bool(_HOST.fullmatch(host)) and (not colon or _port_ok(port))


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


POSTGRES_SCHEME = "postgresql+asyncpg"
"""The one SQLAlchemy driver the services use."""
POSTGRES_PLAIN_SCHEMES = frozenset({"postgresql", "postgres"})
"""Schemes taken as :data:`POSTGRES_SCHEME`: the same URL as libpq and psql write it."""


SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
"""``sslmode`` values libpq takes, and asyncpg's ``ssl`` as a string."""
TARGET_SESSION_ATTRS = frozenset({"any", "primary", "standby", "read-write", "read-only", "prefer-standby"})
"""``target_session_attrs`` values asyncpg takes."""
QUERY_PARAMS = frozenset(
    {
        "ssl",
        "host",
        "port",
        "user",
        "password",
        "database",
        "passfile",
        "command_timeout",
        "prepared_statement_cache_size",
        "target_session_attrs",
    }
)
"""URL query parameters the driver takes. SQLAlchemy's asyncpg dialect hands every query
parameter to ``asyncpg.connect`` as a keyword, as a string (it makes an int of
``prepared_statement_cache_size`` and the port only): libpq's own (``application_name``,
``connect_timeout``) are a ``TypeError`` at the first connection, and so are ``timeout``
or ``statement_cache_size`` as strings; these take a string (``host``: a socket
directory; ``password``: one kept out of the user part)."""
PERCENT_ENCODE = "percent-encode / # ? @ : in the password as %2F %23 %3F %40 %3A"


def _is_number(text: str, *, positive: bool) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return value > 0 if positive else value >= 0 and value == int(value)


def _query_error(name: str, value: str) -> str | None:
    """Why query parameter ``name=value`` would fail at the first connection, or ``None``."""
    if name not in QUERY_PARAMS:
        shown = f" {name!r}" if re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name) else ""
        return (
            f"the query parameter{shown} is not one the asyncpg driver takes "
            f"(it takes sslmode, {', '.join(sorted(QUERY_PARAMS))})"
        )
    if name == "ssl" and value not in SSL_MODES:
        return f"sslmode (ssl) must be one of {', '.join(sorted(SSL_MODES))}"
    if name == "target_session_attrs" and value not in TARGET_SESSION_ATTRS:
        return f"target_session_attrs must be one of {', '.join(sorted(TARGET_SESSION_ATTRS))}"
    if name == "command_timeout" and not _is_number(value, positive=True):
        return "command_timeout must be a number of seconds above 0"
    if name == "port" and not _port_ok(value):
        return "the port must be a number from 1 to 65535"
    if name == "prepared_statement_cache_size" and not (value.isascii() and value.isdigit()):
        return "prepared_statement_cache_size must be a whole number"
    return None


def _driver_query(query: str) -> str:
    """``query`` as the driver takes it (libpq's ``sslmode`` as asyncpg's ``ssl``, the same
    values), ``ValueError`` for a parameter it would fail on at the first connection."""
    if not query:
        return query
    pairs = [("ssl" if k == "sslmode" else k, v) for k, v in parse_qsl(query, keep_blank_values=True)]
    names = [k for k, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("TW_POSTGRES__URL: a query parameter is given twice (sslmode and ssl are the same one)")
    for name, value in pairs:
        if why := _query_error(name, value):
            raise ValueError(f"TW_POSTGRES__URL: {why}")
    if "sslmode" not in query:
        return query
    return urlencode(pairs, safe="/")


def asyncpg_url(url: str) -> str:
    """``url`` as the services' driver takes it: a libpq URL (``postgresql://``,
    ``postgres://``) becomes the asyncpg one it means, the scheme in lower case (code
    elsewhere replaces it as written), libpq's ``sslmode`` asyncpg's ``ssl``; ``ValueError``
    for a URL that would fail later with a traceback (another driver, a port that is not a
    number or is empty, a query parameter the driver does not take, a password with an
    unencoded ``/``, which ends the host part early). Messages name the scheme or a
    parameter at most, never the URL (it carries the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"TW_POSTGRES__URL must be a {POSTGRES_SCHEME}://user:password@host:port/database URL")
    if scheme.lower() not in POSTGRES_PLAIN_SCHEMES | {POSTGRES_SCHEME}:
        shown = f" {scheme!r}" if re.fullmatch(r"[A-Za-z0-9+.-]{1,40}", scheme) else ""
        raise ValueError(
            f"TW_POSTGRES__URL: the scheme{shown} is not {POSTGRES_SCHEME}:// (the asyncpg driver the services use)"
        )
    url = f"{POSTGRES_SCHEME}://{rest}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"TW_POSTGRES__URL: the port must be a number from 1 to 65535; if it is: {PERCENT_ENCODE}")
    after_host = rest[len(parts.netloc) :]
    if parts.netloc.count("@") > 1 or "@" in after_host or "#" in after_host:
        # an unencoded @ left in the user part, or / ? # that ended the host part before the @
        raise ValueError(f"TW_POSTGRES__URL: the URL does not parse as user:password@host: {PERCENT_ENCODE}")
    if parts.netloc.rpartition("@")[2].endswith(":"):
        raise ValueError("TW_POSTGRES__URL: the port after ':' is empty (give one, or leave out the ':')")
    query = _driver_query(parts.query)
    return url if query == parts.query else parts._replace(query=query).geturl()


class PostgresSettings(BaseModel):
    """PostgreSQL connection (SQLAlchemy URL with the asyncpg driver)."""

    model_config = ConfigDict(frozen=True)

    url: SecretStr = Field(
        default=SecretStr("postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/tonewatch"),
        description="SQLAlchemy URL; secret because it carries the password.",
    )
    pool_size: int = Field(default=5, ge=1, description="Connection pool size per process.")

    def password(self) -> str:
        return urlsplit(self.url.get_secret_value()).password or ""

    def redacted_url(self) -> str:
        """The URL with the password masked, safe for logs."""
        parts = urlsplit(self.url.get_secret_value())
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()


class RedisSettings(BaseModel):
    """Redis connection."""

    model_config = ConfigDict(frozen=True)

    url: SecretStr = Field(default=SecretStr("redis://127.0.0.1:16379/0"), description="redis:// URL.")


class ServiceSettings(BaseSettings):
    """Settings every service shares. Env prefix ``TW_``."""

    # Shared fields read TW_<FIELD> (nested: TW_KAFKA__BOOTSTRAP_SERVERS); a service's own
    # fields carry explicit aliases TW_<SERVICE>_<FIELD>, so one environment can serve every
    # service without, e.g., two services sharing a consumer group by accident.
    model_config = SettingsConfigDict(
        env_prefix="TW_", env_nested_delimiter="__", frozen=True, extra="ignore", validate_by_name=True
    )

    environment: Environment = Field(default="development", description="development, test or production.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Log level.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    topics: Topics = Field(default_factory=Topics)
    models_dir: Path | None = Field(default=None, description="Model registry folder; default: the repo's models/.")
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics on this port (1-65535); unset or 0: no metrics server. "
        "Under `tonewatch run all` the classifier, aggregator, router and alerter take it and the next three.",
    )
    failpoints: str = Field(
        default="",
        description="Testing only: crash points, e.g. 'after_db_commit:3' (SIGKILL on the 3rd pass; "
        "'name:3:raise' raises an error there instead).",
    )
    startup_deadline_s: float = Field(
        default=60.0, gt=0, description="How long a service waits for its dependencies before exiting non-zero."
    )

    @field_validator("postgres")
    @classmethod
    def _check_postgres_url(cls, value: PostgresSettings) -> PostgresSettings:
        """The URL the services connect with (:func:`asyncpg_url`), checked where it is read
        from the environment: ``PostgresSettings`` itself also holds URLs for display."""
        url = asyncpg_url(value.url.get_secret_value())
        return value if url == value.url.get_secret_value() else value.model_copy(update={"url": SecretStr(url)})

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> ServiceSettings:
        if self.environment == "production" and is_placeholder(self.postgres.password()):
            raise ValueError("TW_POSTGRES__URL carries a placeholder password; set a real one in production")
        return self
