"""TW_METRICS_PORT: a port number, or unset/0 for no metrics server (``shared.metrics.serve``
starts none for a falsy port); 70000 or -1 were accepted and failed when the server started."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import ServiceSettings


@pytest.mark.parametrize("value", ["70000", "65536", "-1"])
def test_a_port_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", value)
    with pytest.raises(ValidationError, match="metrics_port"):
        ServiceSettings()


@pytest.mark.parametrize(("value", "port"), [("0", 0), ("1", 1), ("9100", 9100), ("65535", 65535)])
def test_a_port_or_zero_for_off_is_accepted(monkeypatch: pytest.MonkeyPatch, value: str, port: int) -> None:
    monkeypatch.setenv("TW_METRICS_PORT", value)
    assert ServiceSettings().metrics_port == port


def test_unset_is_no_metrics_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_METRICS_PORT", raising=False)
    assert ServiceSettings().metrics_port is None
