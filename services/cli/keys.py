"""``tonewatch keys``: create, list and revoke API keys.

Exit codes: 0 success, 1 no such key, 2 usage error, 3 PostgreSQL unreachable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api import auth
from shared.config import ServiceSettings
from shared.db.session import make_engine, make_sessionmaker

app = typer.Typer(help="API keys (stored hashed; scopes read < write < admin).", no_args_is_help=True)
T = TypeVar("T")


def _with_db(settings: ServiceSettings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def run() -> T:
        engine = make_engine(settings.postgres)
        try:
            return await work(make_sessionmaker(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except OSError as exc:
        typer.echo(f"error: cannot reach PostgreSQL at {settings.postgres.redacted_url()}: {exc}", err=True)
        raise typer.Exit(3) from exc


def _line(info: auth.KeyInfo) -> str:
    state = "active" if info.active else f"revoked {info.revoked_at:%Y-%m-%d %H:%M}"
    created = f"{info.created_at:%Y-%m-%d %H:%M}" if info.created_at else "-"
    return f"{info.id:>4}  tw_{info.prefix}_…  {','.join(info.scopes):<6}  {created}  {state:<24}  {info.name}"


@app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key.")],
    scope: Annotated[str, typer.Option("--scope", help="read, write or admin.")] = "read",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print it once: it cannot be shown again."""
    if scope not in auth.SCOPES:
        typer.echo(f"error: unknown scope {scope!r}; choose one of {', '.join(auth.SCOPES)}", err=True)
        raise typer.Exit(2)
    settings = ServiceSettings()
    try:
        new = _with_db(settings, lambda s: auth.create_key(s, name, scope))
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps({**new.info.as_json(), "key": new.key}))
        return
    typer.echo(new.key)
    typer.echo(f"created key {new.info.id} ({scope}) for {name!r}; store it now, it is not shown again", err=True)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (prefixes only, never secrets)."""
    keys = _with_db(ServiceSettings(), auth.list_keys)
    if as_json:
        typer.echo(json.dumps([k.as_json() for k in keys]))
        return
    if not keys:
        typer.echo("no API keys; create one with `tonewatch keys create --name NAME --scope write`")
    for info in keys:
        typer.echo(_line(info))


@app.command("revoke")
def revoke(
    ref: Annotated[str, typer.Argument(metavar="PREFIX_OR_ID", help="Key id or 8-character prefix (see `keys list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Revoke a key; requests with it are refused (401) from now on."""
    ref = ref.strip()
    # Only these name a key on the command line: a whole key there is a secret in the
    # shell's history and in every process listing. Never echoed: it may be the key itself.
    if not auth.is_id_or_prefix(ref):
        typer.echo(
            "error: pass the key's id or its 8-character prefix (both in `tonewatch keys list`), never the key "
            "itself: on a command line it stays in the shell's history and shows in process listings",
            err=True,
        )
        raise typer.Exit(2)
    info = _with_db(ServiceSettings(), lambda s: auth.revoke_key(s, ref))
    if info is None:
        typer.echo(f"error: no API key {ref!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(info.as_json()))
    else:
        typer.echo(f"revoked key {info.id} (tw_{info.prefix}_…, {info.name})")
