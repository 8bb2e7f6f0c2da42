"""Settings of the local stack (Kafka, PostgreSQL, Redis) and the URLs derived from them.

The environment is read only where :class:`StackSettings` is built (the CLI); everything
else receives the settings object. Env prefix ``TW_STACK_``, e.g. ``TW_STACK_KAFKA_PORT=29092``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_state_dir() -> Path:
    """``~/.cache/tonewatch/stack``: artifacts cache, data dirs, logs and pid files."""
    return Path.home() / ".cache" / "tonewatch" / "stack"


class StackSettings(BaseSettings):
    """Where and how ``tonewatch stack`` runs Kafka, PostgreSQL and Redis. Env prefix ``TW_STACK_``."""

    model_config = SettingsConfigDict(env_prefix="TW_STACK_", frozen=True, extra="ignore")

    state_dir: Path = Field(
        default_factory=default_state_dir,
        description="Holds the Kafka artifacts cache, data dirs, logs and pid files.",
    )
    host: str = Field(default="127.0.0.1", description="Address every component listens on.")
    kafka_port: int = Field(default=19092, ge=1, le=65535, description="Kafka PLAINTEXT listener port.")
    kafka_controller_port: int = Field(default=19093, ge=1, le=65535, description="Kafka KRaft controller port.")
    kafka_version: str = Field(
        default="4.1.0", pattern=r"^4\.\d+\.\d+$", description="org.apache.kafka:kafka_2.13 version (4.x)."
    )
    kafka_heap: str = Field(default="-Xms256m -Xmx768m", description="JVM heap options of the broker.")
    postgres_port: int = Field(default=15432, ge=1, le=65535, description="PostgreSQL TCP port.")
    postgres_user: str = Field(default="tonewatch", min_length=1, description="Application role (created by up).")
    postgres_password: SecretStr = Field(default=SecretStr("tonewatch"), description="Password of the role.")
    postgres_db: str = Field(default="tonewatch", min_length=1, description="Database (created by up).")
    postgres_dir: Path | None = Field(
        default=None,
        description=(
            "PostgreSQL data and socket dir. Default <state_dir>/postgres, or /var/lib/tonewatch/stack-<hash> "
            "when running as root and the postgres user cannot reach the state dir."
        ),
    )
    redis_port: int = Field(default=16379, ge=1, le=65535, description="Redis port.")
    start_timeout_s: float = Field(default=90.0, gt=0, description="How long up waits for each component.")
    maven_repo: Path | None = Field(
        default=None, description="Maven local repository used to fetch Kafka (default ~/.m2/repository)."
    )

    @field_validator("state_dir", "postgres_dir", "maven_repo", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()


def host_port(host: str, port: int) -> str:
    """``host:port`` as URLs and Kafka listeners write it: an IPv6 literal in brackets (``[::1]:19092``),
    since its own colons would otherwise run into the port's."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def kafka_bootstrap(settings: StackSettings) -> str:
    """Bootstrap servers of the stack's broker, e.g. ``127.0.0.1:19092``."""
    return host_port(settings.host, settings.kafka_port)


def postgres_url(settings: StackSettings, driver: str | None = "asyncpg") -> str:
    """SQLAlchemy URL, e.g. ``postgresql+asyncpg://tonewatch:tonewatch@127.0.0.1:15432/tonewatch``.

    ``driver=None`` gives a plain ``postgresql://`` URL (libpq, asyncpg.connect).
    """
    scheme = "postgresql" if driver is None else f"postgresql+{driver}"
    user = quote(settings.postgres_user, safe="")
    password = quote(settings.postgres_password.get_secret_value(), safe="")
    db = quote(settings.postgres_db, safe="")
    return f"{scheme}://{user}:{password}@{host_port(settings.host, settings.postgres_port)}/{db}"


def redis_url(settings: StackSettings, db: int = 0) -> str:
    """Redis URL, e.g. ``redis://127.0.0.1:16379/0``."""
    return f"redis://{host_port(settings.host, settings.redis_port)}/{db}"
