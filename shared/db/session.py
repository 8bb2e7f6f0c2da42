"""Engine and session factories. Nothing connects until a factory is called."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.config import PostgresSettings


def make_engine(settings: PostgresSettings) -> AsyncEngine:
    """An async engine (asyncpg) from settings; the first query connects. Its errors never
    show a statement's parameters."""
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        pool_pre_ping=True,
        # A statement's error carries its parameters ("[parameters: ...]"), and every 500
        # logs its error: rule channels' webhook URLs, API key hashes, message texts.
        hide_parameters=True,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def sync_url(settings: PostgresSettings) -> str:
    """The same database through the asyncpg URL, as Alembic's async env expects."""
    return settings.url.get_secret_value()
