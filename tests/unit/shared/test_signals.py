"""SIGTERM during start-up ends the process even when it lands in a finalizer."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

# The signal arrives while ``__del__`` runs Python code: an exception raised by the
# handler there would be printed and dropped, and the child would run on to exit 3.
# The line written after ``del obj`` shows whether it ran on past the finalizer.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, time
    from shared.signals import {install}
    {install}()

    class Finalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(2_000):
                sum(range(50))

    obj = Finalized()
    del obj
    os.write(2, b"ran on past the finalizer\\n")
    time.sleep(3)
    sys.exit(3)
    """
)


def _run(install: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(install=install)],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stderr.decode(errors="replace")


def test_sigterm_inside_a_finalizer_still_stops_the_process() -> None:
    code, err = _run("exit_at_once_until_started")
    assert code == 0, err
    assert "stopping during start-up (SIGTERM)" in err
    assert "ran on past the finalizer" not in err  # stopped inside the finalizer, at once


def test_raising_handler_would_lose_the_signal_there() -> None:
    """Why the start-up handler must not raise: the same child with a raising handler runs on."""
    child = CHILD.replace("{install}()", "signal.signal(signal.SIGTERM, raise_system_exit)").replace(
        "from shared.signals import {install}", "from shared.signals import raise_system_exit"
    )
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, timeout=30, check=False)
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 3
    assert "Exception ignored" in err
    assert "ran on past the finalizer" in err
