"""Run Alembic programmatically (``tonewatch migrate``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

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
