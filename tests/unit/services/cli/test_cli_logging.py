from __future__ import annotations

import logging

from typer.testing import CliRunner

from services.cli import app
from shared.logs import RepeatFilter, ScrubFilter


def test_every_command_logs_through_the_masking_and_collapsing_handler(root_logging: None) -> None:
    result = CliRunner().invoke(app, ["contracts", "check"])
    assert result.exit_code == 0, result.output
    (handler,) = logging.getLogger().handlers
    kinds = {type(f) for f in handler.filters}
    assert {RepeatFilter, ScrubFilter} <= kinds
    assert logging.getLogger().level == logging.WARNING
