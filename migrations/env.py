"""Alembic environment. The URL comes from the settings (``TW_POSTGRES__URL``)
or from the caller (``tonewatch migrate`` passes it in ``config.attributes``, with how long
to wait for another migration). Online, the migration holds the migration lock
(``shared.db.migrate.MIGRATION_LOCK``) on its connection from before Alembic reads the
revision until it is done: concurrent runs go one after the other. An offline script
(``alembic upgrade --sql``) takes the same lock first and releases it last."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from shared.db.migrate import (
    APPLICATION_NAME,
    LOCK_TIMEOUT_S,
    MIGRATION_LOCK,
    hold_migration_lock,
    release_migration_lock,
)
from shared.db.models import Base

target_metadata = Base.metadata


def _url() -> str:
    url = context.config.attributes.get("url")
    if isinstance(url, str):
        return url
    from shared.config import ServiceSettings  # entrypoint: plain `alembic` CLI

    return ServiceSettings().postgres.url.get_secret_value()


def _run(connection: Connection) -> None:
    timeout_s = context.config.attributes.get("lock_timeout_s", LOCK_TIMEOUT_S)
    hold_migration_lock(connection, float(timeout_s))
    try:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        release_migration_lock(connection)


async def _run_online() -> None:
    engine = create_async_engine(  # no values of a statement in a log; named in pg_stat_activity
        _url(), hide_parameters=True, connect_args={"server_settings": {"application_name": APPLICATION_NAME}}
    )
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:  # a failed migration closes its connection too (a caller may go on, as tests do)
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    # The script takes the migration lock as an online run does (waiting, without a time
    # limit, while `tonewatch migrate` or another script runs), for its whole session.
    context.execute(f"SELECT pg_advisory_lock({MIGRATION_LOCK})")
    with context.begin_transaction():
        context.run_migrations()
    context.execute(f"SELECT pg_advisory_unlock({MIGRATION_LOCK})")
else:
    asyncio.run(_run_online())
