from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from services.cli import app
from shared.logs import RepeatFilter, ScrubFormatter


def test_every_command_logs_through_the_masking_and_collapsing_handler(root_logging: None) -> None:
    result = CliRunner().invoke(app, ["contracts", "check"])
    assert result.exit_code == 0, result.output
    (handler,) = logging.getLogger().handlers
    assert RepeatFilter in {type(f) for f in handler.filters} and isinstance(handler.formatter, ScrubFormatter)
    assert logging.getLogger().level == logging.WARNING


def test_main_installs_the_kafka_metadata_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiokafka.client import AIOKafkaClient

    import services.cli
    from shared.kafka import metadata_backoff

    async def plain(*_: object) -> bool:
        return True

    monkeypatch.setattr(AIOKafkaClient, "_metadata_update", plain)  # as aiokafka ships it: no pause
    monkeypatch.setattr(services.cli, "app", lambda: None)
    assert not metadata_backoff.installed()
    services.cli.main()
    assert metadata_backoff.installed()
