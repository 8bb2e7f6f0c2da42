"""The alerter's entrypoint refuses to sign production webhooks with the public
development key, or with a blank or short one."""

from __future__ import annotations

import logging

import pytest

from services.alerter import app
from services.alerter.config import DEV_WEBHOOK_SECRET, AlerterSettings


def test_the_alerter_refuses_the_development_webhook_secret_in_production(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With the public default key anyone could sign a webhook our receivers trust:
    production must set its own. The refusal names the variable, never the secret."""
    ran: list[AlerterSettings] = []

    async def fake_run(settings: AlerterSettings) -> None:
        ran.append(settings)

    monkeypatch.setenv("TW_ENVIRONMENT", "production")
    monkeypatch.setenv("TW_POSTGRES__URL", "postgresql+asyncpg://tw:Strong-pw-1@127.0.0.1:1/tw")  # never reached
    monkeypatch.delenv("TW_ALERTER_WEBHOOK_SECRET", raising=False)
    monkeypatch.setattr("services.alerter.app.logs.configure", lambda *_: None)  # leave the test's logging
    monkeypatch.setattr(app, "run", fake_run)
    monkeypatch.setattr(app, "refuse_unmigrated", lambda *_, **__: False)  # the schema check has its own tests
    with caplog.at_level(logging.CRITICAL, logger="tonewatch.alerter"):
        assert app.main() == 2
    assert ran == []
    critical = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(critical) == 1
    assert "TW_ALERTER_WEBHOOK_SECRET" in critical[0]
    assert DEV_WEBHOOK_SECRET not in critical[0]

    monkeypatch.setenv("TW_ALERTER_WEBHOOK_SECRET", "a-real-production-secret")
    assert app.main() == 0  # a real secret starts
    assert len(ran) == 1
    monkeypatch.setenv("TW_ENVIRONMENT", "development")
    monkeypatch.delenv("TW_ALERTER_WEBHOOK_SECRET")
    assert app.main() == 0  # the default is fine outside production
    assert len(ran) == 2


@pytest.mark.parametrize(
    "secret",
    ["", " ", "\t  \n", "short-secret", "x" * 15, "  " + "y" * 15 + "  ", " " * 20],
)
def test_the_alerter_refuses_a_blank_or_short_webhook_secret_in_production(
    secret: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Anyone can compute an HMAC with an empty key, and guess a short one: in production
    the secret must have 16 characters besides blanks. The refusal names the variable,
    never the value; the same secret is fine outside production."""
    ran: list[AlerterSettings] = []

    async def fake_run(settings: AlerterSettings) -> None:
        ran.append(settings)

    monkeypatch.setenv("TW_ENVIRONMENT", "production")
    monkeypatch.setenv("TW_POSTGRES__URL", "postgresql+asyncpg://tw:Strong-pw-1@127.0.0.1:1/tw")  # never reached
    monkeypatch.setenv("TW_ALERTER_WEBHOOK_SECRET", secret)
    monkeypatch.setattr("services.alerter.app.logs.configure", lambda *_: None)
    monkeypatch.setattr(app, "run", fake_run)
    monkeypatch.setattr(app, "refuse_unmigrated", lambda *_, **__: False)  # the schema check has its own tests
    with caplog.at_level(logging.CRITICAL, logger="tonewatch.alerter"):
        assert app.main() == 2
    assert ran == []
    (critical,) = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert critical == (
        "alerter cannot start: TW_ALERTER_WEBHOOK_SECRET is blank or shorter than 16 characters in production"
    )
    monkeypatch.setenv("TW_ALERTER_WEBHOOK_SECRET", secret + "z" * 16)
    assert app.main() == 0
    monkeypatch.setenv("TW_ENVIRONMENT", "development")
    monkeypatch.setenv("TW_ALERTER_WEBHOOK_SECRET", secret)
    assert app.main() == 0
    assert len(ran) == 2
