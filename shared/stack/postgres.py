"""PostgreSQL from the Debian server binaries, with its own data dir, port and socket dir.

``initdb`` and the server refuse to run as root: as root they run as the ``postgres`` OS user,
otherwise as the current user. When that user cannot reach the state dir (``/root`` is 0700),
the data dir goes to ``/var/lib/tonewatch/stack-<hash>`` and a token ties it to the state dir,
so ``rm -rf <state_dir>`` still resets the database.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from shared.stack.component import Component, Launch, Log
from shared.stack.process import CURRENT_USER, ProcessError, RunAs, run_command
from shared.stack.settings import StackSettings

SOCKET_PATH_MAX = 100
"""Unix socket paths longer than about 107 bytes are rejected by the kernel."""

FALLBACK_ROOT = Path("/var/lib/tonewatch")
OWN_ENTRIES = re.compile(r"data|run|token")
"""What the stack creates in its PostgreSQL dir (data dir, socket dir, fallback token)."""


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path))


def find_bindir() -> Path | None:
    """A directory holding ``postgres``, ``initdb``, ``pg_isready`` and ``psql`` (newest version wins)."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        try:
            out = subprocess.run(  # noqa: S603 - resolved binary, fixed argument
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=False
            )
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for candidate in candidates:
        if candidate and all(Path(candidate, tool).is_file() for tool in ("postgres", "initdb", "pg_isready", "psql")):
            return Path(candidate)
    return None


def quote_ident(name: str) -> str:
    """SQL identifier quoting."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """SQL string literal quoting (standard_conforming_strings=on)."""
    return "'" + value.replace("'", "''") + "'"


def bootstrap_sql(user: str, password: str, db: str) -> str:
    """Idempotent psql script: the login role (password kept in sync; CREATEDB so tests can make
    throwaway databases; pg_signal_backend so ``DROP DATABASE ... WITH (FORCE)`` can also end an
    autovacuum worker that happens to be in one, which otherwise fails the drop) and its database."""
    create_db = f"CREATE DATABASE {quote_ident(db)} OWNER {quote_ident(user)}"
    return "\n".join(
        [
            "\\set ON_ERROR_STOP on",
            "DO $tw$ BEGIN",
            f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {quote_literal(user)}) THEN",
            f"    CREATE ROLE {quote_ident(user)} LOGIN;",
            "  END IF;",
            "END $tw$;",
            f"ALTER ROLE {quote_ident(user)} WITH LOGIN CREATEDB PASSWORD {quote_literal(password)};",
            f"GRANT pg_signal_backend TO {quote_ident(user)};",
            f"SELECT {quote_literal(create_db)}",
            f"  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {quote_literal(db)}) \\gexec",
            "",
        ]
    )


def make_traversable(path: Path) -> None:
    """Create ``path`` and its missing parents as 0755, whatever the umask: as root the ``postgres``
    user must walk through them (``mkdir``'s own mode is masked by the umask, hence the chmod).
    Directories that already exist keep their mode."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        directory.chmod(0o755)


def server_user() -> tuple[RunAs, str]:
    """Identity of initdb and the server, and its name (``postgres`` when running as root)."""
    if os.geteuid() == 0:
        return RunAs.user("postgres"), "postgres"
    return CURRENT_USER, pwd.getpwuid(os.geteuid()).pw_name


class Postgres(Component):
    """A private PostgreSQL cluster listening on ``host:postgres_port``."""

    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown: does not wait for clients to disconnect
    stop_timeout_s = 60.0

    def __init__(self, settings: StackSettings) -> None:
        super().__init__(settings)
        self._bindir: Path | None = None
        self._base: Path | None = None

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def bindir(self) -> Path:
        """The server binaries (resolved once)."""
        if self._bindir is None:
            self._bindir = find_bindir()
            if self._bindir is None:
                raise ProcessError("PostgreSQL server binaries not found")
        return self._bindir

    @property
    def token_file(self) -> Path:
        """``<state_dir>/postgres.token``: ties an out-of-state-dir data dir to this state dir."""
        return self.settings.state_dir / "postgres.token"

    @property
    def base(self) -> Path:
        """Data and socket dir: postgres_dir, <state_dir>/postgres, or the root fallback."""
        if self._base is None:
            self._base = self._choose_base()
        return self._base

    @property
    def data_dir(self) -> Path:
        """The cluster's PGDATA."""
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        """Unix socket directory (also used by psql for setup, with peer auth)."""
        return self.base / "run"

    @property
    def candidate_bases(self) -> tuple[Path, ...]:
        """Every dir ``base`` can be, found without looking up the ``postgres`` OS user: ``reset``
        cleans them all, also on a host where that user does not exist (yet)."""
        if self.settings.postgres_dir is not None:
            return (self.settings.postgres_dir,)
        inside = self.settings.state_dir / "postgres"
        return (inside, self._fallback_base()) if os.geteuid() == 0 else (inside,)

    def _fallback_base(self) -> Path:
        digest = hashlib.sha256(str(self.settings.state_dir).encode()).hexdigest()[:12]
        return FALLBACK_ROOT / f"stack-{digest}"

    def _choose_base(self) -> Path:
        if self.settings.postgres_dir is not None:
            return self.settings.postgres_dir
        run_as, _ = server_user()
        if run_as.is_current or self._reachable(run_as):
            return self.settings.state_dir / "postgres"
        return self._fallback_base()

    def _reachable(self, run_as: RunAs) -> bool:
        make_traversable(self.settings.state_dir)
        try:
            run_command(["/usr/bin/test", "-x", str(self.settings.state_dir)], timeout_s=10, run_as=run_as)
        except ProcessError:
            return False
        return True

    def _discard_stale_fallback(self, log: Log) -> None:
        """A fallback data dir whose token does not match the state dir's is left from a reset."""
        if self.base.parent != FALLBACK_ROOT or not self.base.exists():
            return
        ours = self.token_file.read_text().strip() if self.token_file.is_file() else None
        theirs_file = self.base / "token"
        theirs = theirs_file.read_text().strip() if theirs_file.is_file() else None
        if ours is not None and ours == theirs:
            return
        postmaster = self.data_dir / "postmaster.pid"
        if postmaster.is_file():
            first = postmaster.read_text().split("\n", 1)[0].strip()
            if first.isdigit() and Path(f"/proc/{first}").exists():
                raise ProcessError(f"stale PostgreSQL data dir {self.base} is still in use by pid {first}")
        log(f"postgres: removing data dir {self.base} left from an earlier state dir")
        shutil.rmtree(self.base)

    def prepare(self, log: Log) -> None:
        run_as, superuser = server_user()
        socket = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(str(socket)) > SOCKET_PATH_MAX:
            raise ProcessError(
                f"unix socket path too long ({socket}); set TW_STACK_POSTGRES_DIR to a new, shorter directory "
                "such as /tmp/tw-postgres"
            )
        foreign = (
            sorted(p.name for p in self.base.iterdir() if not OWN_ENTRIES.fullmatch(p.name))
            if self.base.is_dir()
            else []
        )
        if foreign:
            raise ProcessError(
                f"{self.base} holds files that are not the stack's ({', '.join(foreign[:3])}); "
                "TW_STACK_POSTGRES_DIR must name a directory of its own (it is handed to the postgres user)"
            )
        self._discard_stale_fallback(log)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.base, self.socket_dir):
            make_traversable(path)
            if not run_as.is_current:
                os.chown(path, run_as.uid or 0, run_as.gid or 0)
        if self.base.parent == FALLBACK_ROOT and not (self.base / "token").is_file():
            token = secrets.token_hex(16)
            (self.base / "token").write_text(token + "\n")
            self.token_file.write_text(token + "\n")
        if (self.data_dir / "PG_VERSION").is_file():
            return
        log(f"postgres: initdb {self.data_dir} (as {superuser})")
        cmd = [str(self.bindir / "initdb"), "-D", str(self.data_dir), "-U", superuser, "-E", "UTF8", "--no-locale"]
        cmd += ["--auth-local=peer", "--auth-host=scram-sha-256", "--no-sync"]
        run_command(cmd, timeout_s=180, run_as=run_as, cwd=self.base, env=self._env())

    def _env(self) -> dict[str, str]:
        return {"PATH": f"{self.bindir}:/usr/bin:/bin", "LC_ALL": "C", "HOME": str(self.base)}

    def launch(self) -> Launch:
        run_as, _ = server_user()
        options = {
            "listen_addresses": self.settings.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "200",
            "shared_buffers": "128MB",
            "logging_collector": "off",
            "log_line_prefix": "%m [%p] %q%u@%d ",
        }
        cmd = [str(self.bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in options.items():
            cmd += ["-c", f"{key}={value}"]
        return Launch(cmd=cmd, cwd=self.base, env=self._env(), run_as=run_as, umask=0o077)

    def healthy(self) -> bool:
        cmd = [str(self.bindir / "pg_isready"), "-q", "-t", "2", "-h", self.settings.host, "-p", str(self.port)]
        try:
            run_command([*cmd, "-d", self.settings.postgres_db], timeout_s=10)
        except ProcessError:
            return False
        return True

    def after_healthy(self, log: Log) -> None:
        run_as, superuser = server_user()
        sql = bootstrap_sql(
            self.settings.postgres_user, self.settings.postgres_password.get_secret_value(), self.settings.postgres_db
        )
        cmd = [str(self.bindir / "psql"), "-X", "-q", "-h", str(self.socket_dir), "-p", str(self.port)]
        cmd += ["-U", superuser, "-d", "postgres", "-f", "-"]
        run_command(cmd, timeout_s=60, run_as=run_as, cwd=self.base, env=self._env(), input_text=sql)
