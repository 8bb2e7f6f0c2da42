"""Host prerequisites (Java 17+, Maven, PostgreSQL server, redis-server) and their Debian install."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shared.stack.component import Log
from shared.stack.kafka import find_java
from shared.stack.postgres import find_bindir
from shared.stack.process import ProcessError, run_command
from shared.stack.redis import find_redis_server

MIN_JAVA = 17


@dataclass(frozen=True)
class Prereq:
    """One prerequisite and whether this host has it."""

    name: str
    package: str
    found: bool
    detail: str


class MissingPrereqs(RuntimeError):
    """Some prerequisites are missing; the message names the install command."""

    def __init__(self, missing: list[Prereq]) -> None:
        self.missing = missing
        names = ", ".join(f"{p.name} ({p.detail})" for p in missing)
        super().__init__(f"missing prerequisites: {names}. Install them with: {install_command(missing)}")


def parse_java_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output (``1.8.0_x`` -> 8, ``17.0.15`` -> 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def _check_java() -> Prereq:
    java = find_java()
    if java is None:
        return Prereq("java", "default-jre-headless", False, "java not found")
    try:
        out = subprocess.run(  # noqa: S603 - resolved binary, fixed argument
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Prereq("java", "default-jre-headless", False, f"{java} -version failed: {exc}")
    major = parse_java_major(out.stderr + out.stdout)
    if major is None or major < MIN_JAVA:
        return Prereq("java", "default-jre-headless", False, f"Java {MIN_JAVA}+ needed, {java} is {major}")
    return Prereq("java", "default-jre-headless", True, f"{java} (Java {major})")


def check_prereqs() -> list[Prereq]:
    """Every prerequisite, found or not."""
    mvn = shutil.which("mvn")
    bindir = find_bindir()
    redis = find_redis_server()
    return [
        _check_java(),
        Prereq("mvn", "maven", mvn is not None, mvn or "mvn not found"),
        Prereq("postgresql", "postgresql", bindir is not None, str(bindir) if bindir else "server binaries not found"),
        Prereq("redis-server", "redis-server", redis is not None, redis or "redis-server not found"),
    ]


def install_command(missing: list[Prereq]) -> str:
    """The Debian command that installs ``missing``."""
    packages = " ".join(dict.fromkeys(p.package for p in missing))
    return f"apt-get update && apt-get install -y {packages}"


def can_install() -> str | None:
    """None when this process can apt-get install; otherwise why not."""
    if os.geteuid() != 0:
        return "not running as root"
    if not Path("/etc/debian_version").is_file() or shutil.which("apt-get") is None:
        return "not a Debian system with apt-get"
    return None


def install(missing: list[Prereq], log: Log) -> None:
    """``apt-get update && apt-get install -y`` the packages of ``missing``, non-interactively."""
    reason = can_install()
    if reason is not None:
        raise ProcessError(f"cannot install prerequisites ({reason}); run as root: {install_command(missing)}")
    apt = shutil.which("apt-get") or "/usr/bin/apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    packages = list(dict.fromkeys(p.package for p in missing))
    log(f"prereqs: {install_command(missing)}")
    run_command([apt, "update"], timeout_s=600, env=env)
    run_command([apt, "install", "-y", "-o", "Dpkg::Options::=--force-confold", *packages], timeout_s=1800, env=env)


def ensure_prereqs(log: Log, install_missing: bool = False) -> list[Prereq]:
    """Check (and with ``install_missing``, install) prerequisites; raise MissingPrereqs if still missing."""
    prereqs = check_prereqs()
    missing = [p for p in prereqs if not p.found]
    if missing and install_missing:
        install(missing, log)
        prereqs = check_prereqs()
        missing = [p for p in prereqs if not p.found]
    if missing:
        raise MissingPrereqs(missing)
    return prereqs
