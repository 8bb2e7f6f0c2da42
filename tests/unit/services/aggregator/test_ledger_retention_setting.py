"""TW_AGGREGATOR_LEDGER_RETENTION_DAYS may not be shorter than
TW_AGGREGATOR_SCORED_RETENTION_DAYS: the ledger's ids are what keeps a replay of an event
from being counted again, and an event still stored in ``scored_events`` would lose its id
first (a replay then counts it twice in the trends)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.aggregator.config import AggregatorSettings

LEDGER = "TW_AGGREGATOR_LEDGER_RETENTION_DAYS"
SCORED = "TW_AGGREGATOR_SCORED_RETENTION_DAYS"


def test_the_defaults_keep_the_ledger_longer() -> None:
    settings = AggregatorSettings()
    assert settings.ledger_retention_days >= settings.scored_retention_days


@pytest.mark.parametrize(("ledger", "scored"), [("7", "7"), ("30", "7"), ("1.5", "1.5"), ("400", "0.5")])
def test_a_ledger_as_long_or_longer_is_accepted(ledger: str, scored: str) -> None:
    settings = AggregatorSettings(**{LEDGER: ledger, SCORED: scored})
    assert (settings.ledger_retention_days, settings.scored_retention_days) == (float(ledger), float(scored))


@pytest.mark.parametrize(("ledger", "scored"), [("3", "7"), ("6.99", "7"), ("30", "31")])
def test_a_shorter_ledger_is_refused_naming_both_settings(ledger: str, scored: str) -> None:
    with pytest.raises(ValidationError) as info:
        AggregatorSettings(**{LEDGER: ledger, SCORED: scored})
    message = str(info.value)
    assert f"{LEDGER} ({float(ledger):g}) is shorter than {SCORED} ({float(scored):g})" in message
    assert f"set {LEDGER} to at least {SCORED}" in message


def test_the_service_refuses_to_start_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As every settings error of ``tonewatch run``: one line naming both settings, exit code 2."""
    from services.cli import app, main

    monkeypatch.setenv(LEDGER, "3")
    monkeypatch.setenv(SCORED, "7")
    monkeypatch.setattr("services.cli.app", lambda: app(["run", "aggregator"], standalone_mode=False))
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration (AggregatorSettings)")
    assert f"{LEDGER} (3) is shorter than {SCORED} (7)" in err
