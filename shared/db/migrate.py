"""Run Alembic programmatically (``tonewatch migrate``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from shared.config import PostgresSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(settings: PostgresSettings) -> Config:
    cfg = Config(str(REPO_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.attributes["url"] = settings.url.get_secret_value()
    return cfg


def upgrade(settings: PostgresSettings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: PostgresSettings, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)


def heads() -> tuple[str, ...]:
    """The migration heads this release's code needs."""
    return tuple(ScriptDirectory(str(REPO_ROOT / "migrations")).get_heads())


async def database_revision(settings: PostgresSettings) -> str | None:
    """The database's Alembic revision; None when it was never migrated."""
    import asyncpg

    url = settings.url.get_secret_value().replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url, timeout=5)
    try:
        revision = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return str(revision) if revision is not None else None


def schema_refusal(revision: str | None, needed: Sequence[str]) -> str | None:
    """Why a database at ``revision`` cannot serve this release, or None. A service on an
    unmigrated database failed on its first query, and some retried that for ever: a
    misconfiguration to report at start-up, not to retry."""
    if revision in needed:
        return None
    found = f"at revision {revision}" if revision else "not migrated"
    return f"the database is {found} (this release needs {', '.join(needed)}): run tonewatch migrate"
