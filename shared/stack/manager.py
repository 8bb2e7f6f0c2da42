"""``up`` / ``down`` / ``status`` of the whole stack.

Each component runs as one detached process recorded in ``<state_dir>/run/<name>.pid``; ``down``
stops only processes recorded there (pid plus start time), never anything else on the ports.
A file lock serialises concurrent ``up``/``down`` calls on the same state dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.logs import mask_url_passwords
from shared.stack.component import Component, ComponentStatus, Log
from shared.stack.kafka import Kafka
from shared.stack.postgres import OWN_ENTRIES, Postgres, make_traversable
from shared.stack.prereqs import MissingPrereqs, check_prereqs, install
from shared.stack.process import (
    PidRecord,
    ProcessError,
    is_alive,
    live_record,
    port_open,
    start_detached,
    stop_process,
    tail,
    wait_until,
    write_pid_file,
)
from shared.stack.redis import Redis
from shared.stack.settings import StackSettings, host_port, kafka_bootstrap, postgres_url, redis_url

COMPONENT_NAMES = ("kafka", "postgres", "redis")
_PREREQS = {"kafka": ("java", "mvn"), "postgres": ("postgresql",), "redis": ("redis-server",)}


def _quiet(_: str) -> None:
    """Default progress callback: say nothing."""


@dataclass(frozen=True)
class StackReport:
    """Result of up/down/status: one entry per component."""

    action: str
    ok: bool
    elapsed_s: float
    state_dir: str
    components: tuple[ComponentStatus, ...]
    endpoints: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``components`` keyed by name)."""
        data = asdict(self)
        data["components"] = {c.name: asdict(c) for c in self.components}
        return data


def build_components(settings: StackSettings, only: Sequence[str] | None = None) -> list[Component]:
    """The stack's components in start order (``only`` selects a subset by name)."""
    selected = COMPONENT_NAMES if only is None else tuple(only)
    unknown = set(selected) - set(COMPONENT_NAMES)
    if unknown:
        raise ValueError(f"unknown components: {sorted(unknown)}")
    factories: dict[str, type[Component]] = {"kafka": Kafka, "postgres": Postgres, "redis": Redis}
    return [factories[name](settings) for name in COMPONENT_NAMES if name in selected]


def _endpoints(settings: StackSettings) -> dict[str, str]:
    return {
        "kafka_bootstrap": kafka_bootstrap(settings),
        "postgres_url": mask_url_passwords(postgres_url(settings)),
        "redis_url": redis_url(settings),
    }


@contextlib.contextmanager
def _state_lock(settings: StackSettings) -> Iterator[None]:
    """Hold ``<state_dir>/stack.lock``. The file is never deleted (a new one would let a second
    holder in), and ``run/`` and ``logs/`` are made only once it is held, since a ``reset`` that
    held it before may just have removed them."""
    make_traversable(settings.state_dir)
    with (settings.state_dir / "stack.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            (settings.state_dir / "run").mkdir(exist_ok=True)
            (settings.state_dir / "logs").mkdir(exist_ok=True)
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _safe_healthy(component: Component) -> bool:
    try:
        return component.healthy()
    except (ProcessError, OSError):
        return False


def inspect(component: Component, detail: str = "") -> ComponentStatus:
    """Current state of ``component``: its recorded process and a real health check."""
    record = live_record(component.pid_file)
    healthy = _safe_healthy(component)
    if not detail:
        if record is None and healthy:
            detail = "answering, but not started by this stack (no pid file)"
        elif record is None:
            detail = "stopped"
        elif not healthy:
            detail = "running but not healthy"
        else:
            detail = "ok"
    return ComponentStatus(
        name=component.name,
        running=record is not None,
        healthy=healthy,
        pid=None if record is None else record.pid,
        port=component.port,
        log_file=str(component.log_file),
        detail=detail,
    )


def _report(action: str, settings: StackSettings, started: float, statuses: list[ComponentStatus]) -> StackReport:
    return StackReport(
        action=action,
        ok=all(not s.running for s in statuses) if action in ("down", "reset") else all(s.healthy for s in statuses),
        elapsed_s=round(time.monotonic() - started, 2),
        state_dir=str(settings.state_dir),
        components=tuple(statuses),
        endpoints=_endpoints(settings),
    )


def status(settings: StackSettings, only: Sequence[str] | None = None) -> StackReport:
    """Report every component (running, healthy, pid, port, log file)."""
    started = time.monotonic()
    return _report("status", settings, started, [inspect(c) for c in build_components(settings, only)])


def ensure_prereqs(components: Sequence[Component], log: Log, install_missing: bool) -> None:
    """Raise MissingPrereqs unless what ``components`` need is installed (optionally installing it)."""
    needed = {name for c in components for name in _PREREQS[c.name]}
    missing = [p for p in check_prereqs() if p.name in needed and not p.found]
    if missing and install_missing:
        install(missing, log)
        missing = [p for p in check_prereqs() if p.name in needed and not p.found]
    if missing:
        raise MissingPrereqs(missing)


def _start(component: Component, settings: StackSettings, log: Log) -> PidRecord:
    busy = [p for p in component.ports if port_open(settings.host, p)]
    if busy:
        raise ProcessError(f"port {busy[0]} is already in use by a process this stack did not start")
    component.prepare(log)
    launch = component.launch()
    component.process_log_file.parent.mkdir(parents=True, exist_ok=True)
    pid = start_detached(
        launch.cmd,
        log_path=component.process_log_file,
        cwd=launch.cwd,
        env=launch.env,
        run_as=launch.run_as,
        umask=launch.umask,
    )
    try:
        record = write_pid_file(component.pid_file, pid, component.name)
    except ProcessError as exc:
        raise ProcessError(f"{exc}; last log lines:\n{tail(component.process_log_file)}") from exc
    log(f"{component.name}: started pid {pid}, log {component.log_file}")
    return record


def _await_healthy(component: Component, record: PidRecord, timeout_s: float) -> None:
    def died() -> str | None:
        if is_alive(record):
            return None
        logs = tail(component.process_log_file) or tail(component.log_file)
        return f"{component.name} exited during startup; last log lines:\n{logs}"

    if not wait_until(lambda: _safe_healthy(component), timeout_s=timeout_s, interval_s=0.5, abort=died):
        raise ProcessError(f"{component.name} not healthy after {timeout_s:.0f}s; see {component.log_file}")


def up(
    settings: StackSettings,
    log: Log = _quiet,
    *,
    install_prereqs: bool = False,
    only: Sequence[str] | None = None,
) -> StackReport:
    """Start whatever is not running, wait until every component is healthy (idempotent).

    Raises MissingPrereqs when prerequisites are missing (and not installed).
    """
    started = time.monotonic()
    components = build_components(settings, only)
    ensure_prereqs(components, log, install_prereqs)
    errors: dict[str, str] = {}
    with _state_lock(settings):
        pending: list[tuple[Component, PidRecord]] = []
        for component in components:
            record = live_record(component.pid_file)
            if record is not None and _safe_healthy(component):
                log(f"{component.name}: already running (pid {record.pid})")
                try:
                    component.after_healthy(log)  # idempotent: brings roles and grants up to date
                except ProcessError as exc:
                    errors[component.name] = str(exc)
                continue
            try:
                pending.append((component, record or _start(component, settings, log)))
            except ProcessError as exc:
                errors[component.name] = str(exc)
        for component, record in pending:
            try:
                _await_healthy(component, record, settings.start_timeout_s)
                component.after_healthy(log)
                log(f"{component.name}: healthy on {host_port(settings.host, component.port)}")
            except ProcessError as exc:
                errors[component.name] = str(exc)
        statuses = [inspect(c, errors.get(c.name, "")) for c in components]
    report = _report("up", settings, started, statuses)
    if errors and report.ok:  # a setup step failed although the server answers
        report = replace(report, ok=False)
    return report


def down(settings: StackSettings, log: Log = _quiet, *, only: Sequence[str] | None = None) -> StackReport:
    """Stop the processes this stack started (and only those); wait until they exit."""
    started = time.monotonic()
    components = build_components(settings, only)
    with _state_lock(settings):
        statuses = [_stop(component, log) for component in components]
    return _report("down", settings, started, statuses)


def _stop(component: Component, log: Log) -> ComponentStatus:
    """Stop ``component``'s recorded process (the caller holds the state lock)."""
    record = live_record(component.pid_file)
    detail = "not running"
    if record is not None:
        log(f"{component.name}: stopping pid {record.pid}")
        killed = stop_process(record, sig=component.stop_signal, timeout_s=component.stop_timeout_s)
        component.pid_file.unlink(missing_ok=True)
        detail = "killed after timeout" if killed else "stopped"
    still = live_record(component.pid_file)
    return ComponentStatus(
        name=component.name,
        running=still is not None,
        healthy=False,
        pid=None if still is None else still.pid,
        port=component.port,
        log_file=str(component.log_file),
        detail=detail,
    )


# What ``up`` creates in the state dir (and, OWN_ENTRIES, in the PostgreSQL dir): ``reset``
# removes these and nothing else, so a state dir pointed at a shared folder keeps
# everything that is not the stack's. Not stack.lock: see _state_lock.
STATE_ENTRIES = re.compile(r"kafka|kafka-4\.\d+\.\d+|redis|postgres|postgres\.token|logs|run")


def reset(settings: StackSettings, log: Log = _quiet) -> StackReport:
    """``down``, then delete what the stack created in the state dir and an out-of-tree
    PostgreSQL dir (that one once empty): the next ``up`` starts afresh. All under one hold
    of the state lock, so a concurrent ``up`` never loses the data dirs or pid files of the
    servers it has just started."""
    started = time.monotonic()
    with _state_lock(settings):
        report = _report("reset", settings, started, [_stop(c, log) for c in build_components(settings)])
        if report.ok:
            for pg_base in Postgres(settings).candidate_bases:
                _remove_created(pg_base, OWN_ENTRIES, log)
            _remove_created(settings.state_dir, STATE_ENTRIES, log)
    return report


def _remove_created(folder: Path, entries: re.Pattern[str], log: Log) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if entries.fullmatch(path.name):
            log(f"reset: removing {path}")
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when nothing else is left in it
