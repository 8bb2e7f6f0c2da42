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
from urllib.parse import urlsplit

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
        ``kafka://`` prefix). The message leaves the value out: it may carry credentials."""
        for server in value.split(","):
            if not _is_server(server.strip()):
                raise ValueError(
                    "each comma-separated server must be host:port, with a port of 1-65535 "
                    "(an IPv6 address in brackets: [::1]:9092)"
                )
        return value


_HOST = re.compile(r"[A-Za-z0-9_.-]+")
"""A host name or IPv4 address as a bootstrap server may give it."""


def _port_ok(port: str) -> bool:
    return port.isascii() and port.isdigit() and 1 <= int(port) <= 65535


def _is_server(server: str) -> bool:
    """Whether ``server`` is ``host``, ``host:port``, ``[ipv6]`` or ``[ipv6]:port`` (how the
    Kafka client parses it; a port left out is 9092), with a port of 1-65535."""
    if server.startswith("["):
        address, bracket, port = server[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and _port_ok(port[1:]))):
            return False
        return _is_ipv6(address)
    if _is_ipv6(server):  # a bare IPv6 address: its colons are no port
        return True
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


def asyncpg_url(url: str) -> str:
    """``url`` as the services' driver takes it: a libpq URL (``postgresql://``,
    ``postgres://``) becomes the asyncpg one it means; ``ValueError`` for a URL that would
    fail later with a traceback (another driver, a port that is not a number). Messages
    name the scheme at most, never the URL (it carries the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"TW_POSTGRES__URL must be a {POSTGRES_SCHEME}://user:password@host:port/database URL")
    if scheme.lower() in POSTGRES_PLAIN_SCHEMES:
        url = f"{POSTGRES_SCHEME}://{rest}"
    elif scheme.lower() != POSTGRES_SCHEME:
        shown = f" {scheme!r}" if re.fullmatch(r"[A-Za-z0-9+.-]{1,40}", scheme) else ""
        raise ValueError(
            f"TW_POSTGRES__URL: the scheme{shown} is not {POSTGRES_SCHEME}:// (the asyncpg driver the services use)"
        )
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("TW_POSTGRES__URL: the port must be a number from 1 to 65535")
    return url


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
        description="Serve Prometheus metrics on this port (1-65535); unset or 0: no metrics server.",
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
