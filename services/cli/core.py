"""Core commands: migrate, run, contracts, config."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import typer

from shared import logs
from shared.config import ServiceSettings
from shared.signals import exit_at_once_until_started
from shared.startup import DependencyUnavailable

log = logging.getLogger("tonewatch.cli")


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("run")(run)
    contracts = typer.Typer(help="Event contracts and their JSON Schemas.", no_args_is_help=True)
    contracts.command("export")(contracts_export)
    contracts.command("check")(contracts_check)
    app.add_typer(contracts, name="contracts")
    config = typer.Typer(help="Configuration reference.", no_args_is_help=True)
    config.command("docs")(config_docs)
    config.command("check")(config_check)
    app.add_typer(config, name="config")


def migrate(
    revision: str = typer.Argument("head", help="Target revision."),
    down: bool = typer.Option(False, "--down", help="Downgrade to REVISION instead."),
    lock_timeout: float = typer.Option(
        300.0,
        "--lock-timeout",
        min=0,
        help="Seconds to wait for another migration of the same database to finish before failing (exit 1).",
    ),
) -> None:
    """Apply database migrations (``alembic upgrade head``), one run at a time per database."""
    from shared.db import migrate as m

    settings = ServiceSettings()
    logs.configure(settings.log_level, "migrate")
    try:
        if down:
            m.downgrade(settings.postgres, revision, lock_timeout_s=lock_timeout)
        else:
            m.upgrade(settings.postgres, revision, lock_timeout_s=lock_timeout)
    except OSError as exc:
        typer.echo(f"error: cannot reach PostgreSQL at {settings.postgres.redacted_url()}: {exc}", err=True)
        raise typer.Exit(3) from exc
    except m.MigrationLocked as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"database at {settings.postgres.redacted_url()} is at revision {revision}")


def run(service: str = typer.Argument(..., help="classifier, aggregator, router, alerter, api, or all")) -> None:
    """Run one service in the foreground, or ``all`` of them as supervised child processes."""
    from services.registry import SERVICES, entrypoint

    if service == "all":
        raise typer.Exit(_run_all(list(SERVICES)))
    try:
        main = entrypoint(service)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from exc

    exit_at_once_until_started()
    try:
        code = main()
    except DependencyUnavailable as exc:
        typer.echo(f"error: {service}: {exc}", err=True)
        raise typer.Exit(3) from exc
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


# Services that serve /metrics on TW_METRICS_PORT (the API has its own /metrics route).
METRICS_SERVERS = ("classifier", "aggregator", "router", "alerter")


def metrics_ports(base: int | None, names: list[str], api_port: int | None = None) -> dict[str, int]:
    """Each child's metrics port under ``run all``: ``TW_METRICS_PORT`` is one port, and
    every child binding it made the second one fail ("Address already in use") and stop
    them all; so the first serves on it and each next one on the port after. The API's
    own port (``api_port``, TW_API_PORT) is skipped: a child given it collided with the API
    the same way (TW_METRICS_PORT=8077 gave the alerter 8080, the API's default)."""
    if not base:
        return {}
    if base == api_port:
        raise ValueError(f"TW_METRICS_PORT={base} is the API's port (TW_API_PORT); choose another")
    ports: dict[str, int] = {}
    port = base
    for name in (n for n in names if n in METRICS_SERVERS):
        if port == api_port:
            port += 1
        ports[name] = port
        port += 1
    if ports and max(ports.values()) > 65535:
        raise ValueError(f"TW_METRICS_PORT={base} leaves no room for {len(ports)} services' ports (at most 65535)")
    return ports


def _run_all(names: list[str]) -> int:
    from services.api.config import ApiSettings

    # Read outside the try: a bad setting (a ValidationError, which is a ValueError) is
    # then an "invalid configuration" (exit 2, services.cli.main), without its values.
    base = ServiceSettings().metrics_port
    api_port = ApiSettings().port if "api" in names else None
    try:
        ports = metrics_ports(base, names, api_port)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    if ports:
        typer.echo("metrics: " + ", ".join(f"{n} :{p}" for n, p in ports.items()), err=True)

    def start(name: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TW_METRICS_PORT": str(ports[name])} if name in ports else None
        return subprocess.Popen([sys.executable, "-m", "services", "run", name], env=env)  # noqa: S603

    procs = {n: start(n) for n in names}
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = 0
    while not stopping:
        for name, proc in procs.items():
            rc = proc.poll()
            if rc is not None:
                typer.echo(f"service {name} exited with {rc}; stopping the others", err=True)
                code, stopping = rc or 1, True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


def contracts_export() -> None:
    """Write the JSON Schemas of every contract into shared/schemas/."""
    from shared import schemas

    for path in schemas.write():
        typer.echo(str(path))


def contracts_check() -> None:
    """Fail when the checked-in JSON Schemas differ from the contracts."""
    from shared import schemas

    stale = schemas.drift()
    if stale:
        typer.echo(f"schemas out of date: {', '.join(stale)}; run `tonewatch contracts export`", err=True)
        raise typer.Exit(1)
    typer.echo("schemas match the contracts")


def config_docs(
    as_json: bool = typer.Option(False, "--json"),
    readme: Path | None = typer.Option(None, "--write", help="Rewrite the reference section of this file."),
) -> None:
    """Print the configuration reference generated from the settings classes."""
    from services.settings_doc import markdown, reference

    if as_json:
        typer.echo(json.dumps(reference(), indent=2))
    elif readme is not None:
        readme.write_text(_spliced(readme, markdown())[1])
        typer.echo(f"configuration reference written into {readme}")
    else:
        typer.echo(markdown())


def config_check(readme: Path = typer.Argument(Path("README.md"))) -> None:
    """Fail when the README's configuration reference differs from the settings classes."""
    from services.settings_doc import markdown

    text, spliced = _spliced(readme, markdown())
    if spliced != text:
        typer.echo(
            f"{readme}: configuration reference is stale; run `tonewatch config docs --write {readme}`", err=True
        )
        raise typer.Exit(1)
    typer.echo(f"{readme}: configuration reference is current")


def _spliced(path: Path, table: str) -> tuple[str, str]:
    """``path``'s text, and that text with its configuration reference replaced by ``table``.
    A file that is not UTF-8 or has no reference markers is the user's to fix: one line
    naming it, exit 1 (as for a file that is missing), not a traceback."""
    from services.settings_doc import splice

    try:
        text = path.read_text(encoding="utf-8")
        return text, splice(text, table)
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"
    except ValueError as exc:  # splice: no markers
        why = f"{exc} (<!-- config-reference:begin ... --> and <!-- config-reference:end -->)"
    typer.echo(f"error: {path}: {why}", err=True)
    raise typer.Exit(1)
