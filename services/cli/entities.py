"""``tonewatch entities``: manage the watchlist in PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import ValidationError

from services.ingest.sources import DEMO_WATCHLIST
from shared.config import ServiceSettings
from shared.db import watchlist
from shared.db.session import make_engine, make_sessionmaker
from shared.entities import ALL, WatchedEntity, is_key

if TYPE_CHECKING:
    from services.api.routes_entities import EntityIn

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
        # a key stored with a final newline (refused since; see is_stored_key) is shown quoted, on its line
        key = e.key if is_key(e.key) else repr(e.key)
        typer.echo(f"{key:16} {e.name:40} aliases={', '.join(e.aliases)} tickers={', '.join(e.tickers)}")


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
    fields = {"name": name, "aliases": alias, "tickers": ticker, "case_sensitive_aliases": exact, "group": group}
    entity = _check(key, fields)
    if isinstance(entity, list):
        for problem in entity:
            typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(2)
    _with_db(lambda s: watchlist.upsert(s, [entity]))
    typer.echo(f"entity {key} saved")


@app.command("remove")
def remove(key: str) -> None:
    """Remove an entity."""
    if not _with_db(lambda s: watchlist.remove(s, key)):
        typer.echo(f"error: no entity {key!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"entity {key} removed")


class WatchlistFileError(ValueError):
    """A watchlist file with bad entries; ``problems`` has one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _entity_in() -> type[EntityIn]:
    # The API's own model (PUT /v1/entities/{key}), imported late: it pulls in FastAPI.
    from services.api.routes_entities import EntityIn

    return EntityIn


def _check(key: object, fields: dict[str, Any]) -> WatchedEntity | list[str]:
    """The entity ``key`` with ``fields``, checked as ``PUT /v1/entities/{key}`` checks it
    (lists where lists belong, no unknown fields, lengths, tickers a cashtag can match),
    or the problems found, one line each (``field: message``)."""
    problems = []
    if not isinstance(key, str):
        problems.append("key: required, a string")
    elif not is_key(key) or key == ALL:
        problems.append(f"key: invalid entity key {key!r}: use 1-64 letters, digits, '_', '.', '-'")
    try:
        body = _entity_in().model_validate(fields)
    except ValidationError as exc:
        problems += [f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()]
    if problems:
        return problems
    assert isinstance(key, str)
    try:
        return WatchedEntity(
            key,
            body.name,
            tuple(body.aliases),
            tuple(body.tickers),
            tuple(body.case_sensitive_aliases),
            body.group,
        )
    except ValueError as exc:
        return [str(exc)]


def load_file(path: Path) -> list[WatchedEntity]:
    """The entities of a watchlist file (a JSON list of objects with ``key`` and the fields
    of ``PUT /v1/entities/{key}``); ``WatchlistFileError`` naming every bad entry, by index
    and key, if any is bad (``ValueError`` if the file is not JSON)."""
    items = json.loads(path.read_text())
    if not isinstance(items, list):
        raise WatchlistFileError(["the file must hold a JSON list of entities"])
    entities: list[WatchedEntity] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"entry {i}: must be a JSON object")
            continue
        key = item.get("key")
        where = f"entry {i}" + (f" (key {key!r})" if isinstance(key, str) else "")
        checked = _check(key, {k: v for k, v in item.items() if k != "key"})
        if isinstance(checked, list):
            problems += [f"{where}: {problem}" for problem in checked]
            continue
        if checked.key in seen:
            problems.append(f"{where}: key: the same key as entry {seen[checked.key]}")
            continue
        seen[checked.key] = i
        entities.append(checked)
    if problems:
        raise WatchlistFileError(problems)
    return entities


@app.command("import")
def import_(path: Path = typer.Argument(DEMO_WATCHLIST, exists=True)) -> None:
    """Import a watchlist JSON file (default: the demo watchlist).

    Every entry is checked as ``PUT /v1/entities/{key}`` checks a body; if any is bad,
    each problem is reported and nothing is imported (exit 2)."""
    try:
        entities = load_file(path)
    except WatchlistFileError as exc:
        for problem in exc.problems:
            typer.echo(f"error: {path}: {problem}", err=True)
        typer.echo(f"error: {path}: {len(exc.problems)} problem(s); nothing imported", err=True)
        raise typer.Exit(2) from exc
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        typer.echo(f"error: {path}: {type(exc).__name__}: {exc}; nothing imported", err=True)
        raise typer.Exit(2) from exc
    n = _with_db(lambda s: watchlist.upsert(s, entities))
    typer.echo(f"imported {n} entities from {path}")
