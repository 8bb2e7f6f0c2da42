"""``tonewatch entities``: manage the watchlist in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from services.ingest.sources import DEMO_WATCHLIST
from shared.config import ServiceSettings
from shared.db import watchlist
from shared.db.session import make_engine, make_sessionmaker
from shared.entities import WatchedEntity

app = typer.Typer(help="Manage the watchlist.", no_args_is_help=True)
T = TypeVar("T")


def _with_db(fn: Callable[[Any], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = make_engine(ServiceSettings().postgres)
        try:
            return await fn(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json")) -> None:
    """List active entities."""
    rows = _with_db(watchlist.load_active)
    if as_json:
        typer.echo(
            json.dumps(
                [
                    e.__dict__
                    | {
                        "aliases": list(e.aliases),
                        "tickers": list(e.tickers),
                        "case_sensitive_aliases": list(e.case_sensitive_aliases),
                    }
                    for e in rows
                ]
            )
        )
        return
    for e in rows:
        typer.echo(f"{e.key:16} {e.name:40} aliases={', '.join(e.aliases)} tickers={', '.join(e.tickers)}")


@app.command("add")
def add(
    key: str = typer.Argument(...),
    name: str = typer.Option(..., "--name"),
    alias: list[str] = typer.Option([], "--alias", help="Case-insensitive alias (repeatable)."),
    exact: list[str] = typer.Option([], "--exact", help="Case-sensitive alias, e.g. BP (repeatable)."),
    ticker: list[str] = typer.Option([], "--ticker", help="Cashtag ticker without $ (repeatable)."),
    group: str | None = typer.Option(None, "--group"),
) -> None:
    """Add or update an entity."""
    try:
        entity = WatchedEntity(key, name, tuple(alias), tuple(ticker), tuple(exact), group)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _with_db(lambda s: watchlist.upsert(s, [entity]))
    typer.echo(f"entity {key} saved")


@app.command("remove")
def remove(key: str) -> None:
    """Remove an entity."""
    if not _with_db(lambda s: watchlist.remove(s, key)):
        typer.echo(f"error: no entity {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"entity {key} removed")


def load_file(path: Path) -> list[WatchedEntity]:
    items = json.loads(path.read_text())
    return [
        WatchedEntity(
            d["key"],
            d["name"],
            tuple(d.get("aliases", ())),
            tuple(d.get("tickers", ())),
            tuple(d.get("case_sensitive_aliases", ())),
            d.get("group"),
        )
        for d in items
    ]


@app.command("import")
def import_(path: Path = typer.Argument(DEMO_WATCHLIST, exists=True)) -> None:
    """Import a watchlist JSON file (default: the demo watchlist)."""
    try:
        entities = load_file(path)
    except (ValueError, KeyError, TypeError) as exc:  # JSONDecodeError is a ValueError
        typer.echo(f"error: {path}: {type(exc).__name__}: {exc}; nothing imported", err=True)
        raise typer.Exit(2) from exc
    n = _with_db(lambda s: watchlist.upsert(s, entities))
    typer.echo(f"imported {n} entities from {path}")
