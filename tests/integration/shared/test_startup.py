"""A dependency that is down at start: the service retries, then exits non-zero
naming what it waited for."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from shared.config import PostgresSettings

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_service_gives_up_on_missing_postgres() -> None:
    port = _free_port()
    env = dict(
        os.environ,
        TW_POSTGRES__URL=f"postgresql+asyncpg://tw:x@127.0.0.1:{port}/tw",
        TW_STARTUP_DEADLINE_S="4",
        TW_ENVIRONMENT="test",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "services", "run", "aggregator"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3
    assert f"gave up waiting for PostgreSQL at postgresql+asyncpg://tw:***@127.0.0.1:{port}/tw" in proc.stderr
    assert "waiting for PostgreSQL" in proc.stderr  # it retried and said so
    assert ":x@" not in proc.stderr  # the password never appears


def test_service_gives_up_on_missing_kafka(pg_settings: PostgresSettings) -> None:
    port = _free_port()
    env = dict(
        os.environ,
        TW_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
        TW_STARTUP_DEADLINE_S="4",
        TW_ENVIRONMENT="test",
        TW_POSTGRES__URL=pg_settings.url.get_secret_value(),  # migrated: the schema check passes
    )
    proc = subprocess.run(
        [sys.executable, "-m", "services", "run", "router"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3
    assert f"gave up waiting for Kafka at 127.0.0.1:{port}" in proc.stderr


def test_classifier_refuses_cuda_on_a_cpu_machine(tiny_models: object, pg_settings: PostgresSettings) -> None:
    env = dict(
        os.environ,
        TW_INFERENCE__DEVICE="cuda",
        TW_MODELS_DIR=str(tiny_models),
        TW_ENVIRONMENT="test",
        TW_POSTGRES__URL=pg_settings.url.get_secret_value(),  # migrated: the schema check passes
    )
    proc = subprocess.run(
        [sys.executable, "-m", "services", "run", "classifier"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "classifier cannot start" in proc.stderr and "CUDA" in proc.stderr
