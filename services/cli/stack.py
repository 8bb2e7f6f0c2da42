"""``tonewatch stack up | down | status``: a real Kafka, PostgreSQL and Redis without Docker.

Exit codes: 0 ok, 1 a component is unhealthy (or did not stop), 2 missing prerequisites.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated

import typer

from shared.stack.manager import StackReport
from shared.stack.prereqs import MissingPrereqs
from shared.stack.process import ProcessError
from shared.stack.settings import StackSettings

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_PREREQS = 2

app = typer.Typer(
    help="Local Kafka, PostgreSQL and Redis for development and CI (state in ~/.cache/tonewatch/stack).",
    no_args_is_help=True,
    add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _progress_printer() -> Callable[[str], None]:
    """Progress on stderr, each line prefixed with the seconds since the command started."""
    started = time.monotonic()

    def emit(line: str) -> None:
        typer.echo(f"[{time.monotonic() - started:6.1f}s] {line}", err=True)

    return emit


def _emit(report: StackReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    for c in report.components:
        state = "healthy" if c.healthy else ("running" if c.running else "down")
        pid = "-" if c.pid is None else str(c.pid)
        typer.echo(f"{c.name:<9} {state:<8} port {c.port:<6} pid {pid:<8} log {c.log_file}  {c.detail}")
    if report.action not in ("down", "reset"):
        for key, value in report.endpoints.items():
            typer.echo(f"{key:<16} {value}")
    verdict = "ok" if report.ok else ("not stopped" if report.action in ("down", "reset") else "unhealthy")
    typer.echo(f"{report.action}: {verdict} in {report.elapsed_s:.1f}s")


def _prereq_failure(exc: Exception, as_json: bool) -> typer.Exit:
    if as_json:
        typer.echo(json.dumps({"ok": False, "error": str(exc)}))
    else:
        typer.echo(f"error: {exc}", err=True)
    return typer.Exit(EXIT_PREREQS)


def start_stack(
    settings: StackSettings, log: Callable[[str], None], *, install_prereqs: bool, as_json: bool = False
) -> StackReport:
    """``manager.up``, with missing prerequisites (or their failed install) turned into exit 2 and
    the install command instead of a traceback: `stack up` and `demo` both start the stack."""
    from shared.stack import manager  # lazy: keeps `tonewatch --help` fast

    try:
        return manager.up(settings, log, install_prereqs=install_prereqs)
    except MissingPrereqs as exc:
        raise _prereq_failure(exc, as_json) from exc
    except ProcessError as exc:  # the prerequisite install itself failed
        raise _prereq_failure(exc, as_json) from exc


@app.command()
def up(
    install_prereqs: Annotated[
        bool,
        typer.Option("--install-prereqs", help="As root on Debian: apt-get install what is missing (non-interactive)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Start Kafka, PostgreSQL and Redis (only what is not running) and wait until healthy."""
    report = start_stack(StackSettings(), _progress_printer(), install_prereqs=install_prereqs, as_json=as_json)
    _emit(report, as_json)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_UNHEALTHY)


@app.command()
def down(as_json: JsonOption = False) -> None:
    """Stop the processes `up` started (pid files in the state dir) and wait for them to exit."""
    from shared.stack import manager

    report = manager.down(StackSettings(), _progress_printer())
    _emit(report, as_json)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_UNHEALTHY)


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Report each component: running, healthy, port, pid, log file."""
    from shared.stack import manager

    report = manager.status(StackSettings())
    _emit(report, as_json)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_UNHEALTHY)


@app.command()
def reset(as_json: JsonOption = False) -> None:
    """Stop the stack and delete its state (data, logs, cached jars): the next `up` starts from scratch."""
    from shared.stack import manager

    report = manager.reset(StackSettings(), _progress_printer())
    _emit(report, as_json)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_UNHEALTHY)
