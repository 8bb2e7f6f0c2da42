"""The alerter's Redis dedup keys name the deployment they belong to."""

from __future__ import annotations

from pydantic import SecretStr

from services.alerter.evaluate import deployment
from shared.config import PostgresSettings


def test_the_deployment_is_its_database_without_the_password() -> None:
    """Deployments sharing a Redis keep their dedup keys apart by database: rule ids and
    minutes repeat across databases. The password never reaches Redis."""
    a = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:Secret-pw-1@db.example:5433/tonewatch"))
    b = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:Secret-pw-1@db.example:5433/tonewatch_b"))
    c = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw@other.example/tonewatch?ssl=require"))
    assert [deployment(a), deployment(b), deployment(c)] == [
        "db.example:5433/tonewatch",
        "db.example:5433/tonewatch_b",
        "other.example/tonewatch",
    ]
