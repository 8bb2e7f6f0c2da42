"""The ``tonewatch`` command: the composition root of the command line.

Exit codes: 0 success; 1 failure (a check failed, a component is unhealthy);
2 usage error or missing prerequisite; 3 a dependency (Kafka, PostgreSQL, Redis)
is unreachable or did not come up in time.
"""

from __future__ import annotations

import typer
from pydantic import ValidationError

from services.cli import alerts, core, dlq, entities, ingest, ops, stack
from shared import logs
from shared.faults import unreachable
from shared.kafka import header_keys, metadata_backoff
from shared.kafka.clients import TopicCreationError

app = typer.Typer(
    name="tonewatch",
    help="Real-time sentiment and intent monitoring over Kafka.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure_logging() -> None:
    # Library warnings from any command (a Kafka client retrying during `ingest`)
    # get the services' format, secret and personal-data masking and repeat
    # collapsing; `run` reconfigures at the service's own level.
    logs.configure("WARNING", "tonewatch")


app.add_typer(stack.app, name="stack", help="Local Kafka, PostgreSQL and Redis without Docker.")
core.register(app)
ops.register(app)
app.add_typer(ingest.app, name="ingest")
app.add_typer(entities.app, name="entities")
app.add_typer(alerts.app, name="alerts")
app.add_typer(dlq.app, name="dlq")


def _optional_subapps() -> None:
    # Sub-apps whose modules are owned by other parts of the tree.
    import importlib

    for module, name, help_text in (
        ("services.cli.models", "models", "Train, export, evaluate, register and run classifiers."),
        ("services.cli.keys", "keys", "API keys."),
    ):
        try:
            sub = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.add_typer(sub.app, name=name, help=help_text)


_optional_subapps()


REFUSED_SQLSTATES = {"28": "refused the login", "3D": "has no such database", "42501": "refused access"}
"""SQLSTATE classes (first two characters) or codes of a connection PostgreSQL answered but
refused: 28 invalid authorization (a wrong password or user), 3D invalid catalog name (a
database that does not exist), 42501 insufficient privilege (``permission denied for
database``: the user's CONNECT privilege revoked, or a table it may not use). The settings
are wrong, not the code: one line, not a traceback. Class 42 as a whole is not: it is
mostly the code's own errors (an undefined column)."""


def refused_connection(exc: BaseException) -> str | None:
    """What PostgreSQL said when it refused the connection ``exc`` (or the driver error it
    wraps) tells of, scrubbed, else ``None``. asyncpg's messages name the user and the
    database, never the password."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (what := REFUSED_SQLSTATES.get(state) or REFUSED_SQLSTATES.get(state[:2])):
            return logs.scrub(f"PostgreSQL {what}: {current}")
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's error
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return None


def main() -> None:
    metadata_backoff.install()  # before any Kafka client of ours or faust's runs
    header_keys.install()  # a header key that is not UTF-8 must not stop every consumer
    try:
        app()
    except ValidationError as exc:
        # A bad TW_* setting: one line per field and exit code 2, without the values
        # (pydantic's message repeats the whole input, secrets included).
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors())
        typer.echo(f"error: invalid configuration ({exc.title}): {logs.scrub(problems)}", err=True)
        raise SystemExit(2) from None
    except (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        typer.echo(f"error: {logs.scrub(str(exc))}", err=True)
        raise SystemExit(1) from None
    except TopicCreationError as exc:
        # the broker refused a topic (a name, replication factor or config it does not take)
        typer.echo(f"error: {logs.scrub(str(exc))}", err=True)
        raise SystemExit(1) from None
    except Exception as exc:
        if refused := refused_connection(exc):
            typer.echo(f"error: {refused}; check TW_POSTGRES__URL", err=True)
            raise SystemExit(1) from None
        if not unreachable(exc):
            raise
        # One line and exit code 3 instead of a traceback, for every command.
        reason = logs.scrub(f"{type(exc).__name__}: {exc}")
        typer.echo(f"error: cannot reach a service tonewatch needs ({reason}); see `tonewatch stack status`", err=True)
        raise SystemExit(3) from None
