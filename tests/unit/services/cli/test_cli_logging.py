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


def test_a_topic_the_broker_refuses_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import services.cli
    from shared.kafka.clients import TopicCreationError

    def refused() -> None:
        raise TopicCreationError([("x.news.raw", "INVALID_REPLICATION_FACTOR", "Replication factor: 3 larger than 1")])

    monkeypatch.setattr(services.cli, "app", refused)
    with pytest.raises(SystemExit) as exit_:
        services.cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err == (
        "error: cannot create Kafka topic 'x.news.raw': INVALID_REPLICATION_FACTOR: "
        "Replication factor: 3 larger than 1\n"
    )
