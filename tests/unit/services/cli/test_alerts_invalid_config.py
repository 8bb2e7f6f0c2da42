"""`tonewatch alerts ...` with a bad TW_* setting: the settings were read inside the
block that reports rule errors, so `alerts rules list` said "invalid rule: TW_ALERTER_MAX_STEPS: ..."
about a command that takes no rule. A setting is the CLI's "invalid configuration" (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("args", [["alerts", "rules", "list"], ["alerts", "list"], ["alerts", "rules", "disable", "1"]])
def test_a_bad_setting_is_reported_as_configuration_not_as_a_rule(args: list[str]) -> None:
    env = {**os.environ, "TW_ALERTER_MAX_STEPS": "-1"}
    done = subprocess.run(
        [sys.executable, "-m", "services", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "invalid configuration (AlerterSettings): TW_ALERTER_MAX_STEPS" in done.stderr
    assert "invalid rule" not in done.stderr
    assert "Traceback" not in done.stderr
