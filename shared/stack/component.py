"""What every stack component (Kafka, PostgreSQL, Redis) provides to the manager."""

from __future__ import annotations

import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.stack.process import CURRENT_USER, RunAs
from shared.stack.settings import StackSettings

Log = Callable[[str], None]
"""Progress callback: one human-readable line (the CLI prints it on stderr)."""


@dataclass(frozen=True)
class Launch:
    """How to start a component's server process."""

    cmd: Sequence[str]
    cwd: Path
    env: Mapping[str, str]
    run_as: RunAs = CURRENT_USER
    umask: int = 0o022


@dataclass(frozen=True)
class ComponentStatus:
    """One component as ``status`` reports it."""

    name: str
    running: bool
    healthy: bool
    pid: int | None
    port: int
    log_file: str
    detail: str = ""


class Component(ABC):
    """A server the stack runs: one process, one pid file, one health check."""

    name: str = ""
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 30.0

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings

    @property
    def logs_dir(self) -> Path:
        """``<state_dir>/logs``."""
        return self.settings.state_dir / "logs"

    @property
    def pid_file(self) -> Path:
        """``<state_dir>/run/<name>.pid``."""
        return self.settings.state_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        """The main log of the component."""
        return self.logs_dir / f"{self.name}.log"

    @property
    def process_log_file(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.log_file

    @property
    @abstractmethod
    def port(self) -> int:
        """The port clients use."""

    @property
    def ports(self) -> tuple[int, ...]:
        """Every port the server binds (checked free before start)."""
        return (self.port,)

    @abstractmethod
    def prepare(self, log: Log) -> None:
        """One-time, idempotent setup before start: artifacts, config files, data dir."""

    @abstractmethod
    def launch(self) -> Launch:
        """The server process to start."""

    @abstractmethod
    def healthy(self) -> bool:
        """A real protocol-level check that the server serves requests."""

    def after_healthy(self, log: Log) -> None:  # noqa: B027 - optional hook
        """Idempotent setup that needs the running server (roles, databases)."""
