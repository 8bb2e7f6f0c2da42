"""Prerequisite checks and the install command they print."""

from __future__ import annotations

import pytest

from shared.stack import manager, prereqs
from shared.stack.prereqs import MissingPrereqs, Prereq, install_command, parse_java_major
from shared.stack.settings import StackSettings


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ("garbage", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_install_command_names_the_packages() -> None:
    missing = [Prereq("redis-server", "redis-server", False, "x"), Prereq("mvn", "maven", False, "y")]
    assert install_command(missing) == "apt-get update && apt-get install -y redis-server maven"
    message = str(MissingPrereqs(missing))
    assert "apt-get install -y redis-server maven" in message
    assert "redis-server (x)" in message


def test_up_only_needs_the_prereqs_of_selected_components(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = [
        Prereq("java", "default-jre-headless", False, "none"),
        Prereq("mvn", "maven", True, "/usr/bin/mvn"),
        Prereq("postgresql", "postgresql", True, "/usr/lib/postgresql/15/bin"),
        Prereq("redis-server", "redis-server", True, "/usr/bin/redis-server"),
    ]
    monkeypatch.setattr(manager, "check_prereqs", lambda: fake)
    components = manager.build_components(StackSettings(), ["redis"])
    manager.ensure_prereqs(components, lambda _: None, install_missing=False)
    with pytest.raises(MissingPrereqs, match="default-jre-headless"):
        manager.ensure_prereqs(manager.build_components(StackSettings()), lambda _: None, install_missing=False)


def test_install_refused_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert prereqs.can_install() == "not running as root"
    with pytest.raises(RuntimeError, match="run as root: apt-get update"):
        prereqs.install([Prereq("redis-server", "redis-server", False, "x")], lambda _: None)
