"""Every ``tonewatch`` command answers a stopped Kafka or PostgreSQL with one error
line and exit code 3, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import KafkaSettings, PostgresSettings
from shared.stack import manager
from shared.stack.settings import StackSettings

pytestmark = pytest.mark.integration


def _tonewatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.parametrize(
    ("component", "commands"),
    [
        ("kafka", [["dlq", "list", "news.raw"], ["ingest", "file", "{chats}", "--stream", "chat"]]),
        ("postgres", [["alerts", "rules", "list"], ["entities", "list"]]),
    ],
)
def test_a_stopped_dependency_is_one_error_line_and_exit_3(
    component: str,
    commands: list[list[str]],
    kafka_settings: KafkaSettings,
    pg_settings: PostgresSettings,
    unique: str,
) -> None:
    chats = str(Path(__file__).parents[4] / "data" / "demo" / "chats.jsonl")
    env = {
        "PATH": "/usr/bin:/bin",
        "TW_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "TW_POSTGRES__URL": pg_settings.url.get_secret_value(),
        "TW_TOPICS__PREFIX": f"t{unique}.",
    }
    stack = StackSettings()
    manager.down(stack, only=[component])
    try:
        results = [_tonewatch(*(chats if a == "{chats}" else a for a in cmd), env=env) for cmd in commands]
    finally:
        up = manager.up(stack, only=[component])
    assert up.ok, up
    for cmd, proc in zip(commands, results, strict=True):
        assert proc.returncode == 3, (cmd, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (cmd, proc.stderr[-2000:])
        assert "error: cannot reach a service tonewatch needs" in proc.stderr, (cmd, proc.stderr[-2000:])
        assert "tonewatch stack status" in proc.stderr
        assert "tonewatch:tonewatch@" not in proc.stderr  # no password
