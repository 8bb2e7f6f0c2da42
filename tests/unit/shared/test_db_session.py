"""The engines every service makes never show a statement's parameters in their errors
(logged whole by every 500 and crash: webhook URLs, key hashes, message texts)."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import exc

from shared.config import PostgresSettings
from shared.db.session import make_engine

SECRET = "https://discord.com/api/webhooks/1/zzSECRETTOKENzz"


async def test_the_engine_hides_parameters() -> None:
    settings = PostgresSettings(url=SecretStr("postgresql+asyncpg://tw:pw@127.0.0.1:1/tw"))
    engine = make_engine(settings)
    try:
        assert engine.sync_engine.hide_parameters is True
        # As SQLAlchemy builds the error it raises for a refused statement on this engine.
        error = exc.DBAPIError.instance(
            "INSERT INTO t VALUES ($1)",
            (SECRET,),
            ValueError("refused"),
            Exception,
            hide_parameters=engine.sync_engine.hide_parameters,
            dialect=engine.dialect,
        )
        assert SECRET not in str(error) and "parameters:" not in str(error)
    finally:
        await engine.dispose()
