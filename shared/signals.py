"""What SIGTERM does while a service is still starting.

Each service installs its own stop handling once it is about to consume (faust's
worker, ``loop.add_signal_handler`` in the sinks and the alerter, uvicorn in the
API). Before that, a stop request must end the process at once.

The handler does not raise ``SystemExit``: Python runs a signal handler between two
bytecodes of whatever the main thread executes, and an exception raised inside a
``__del__`` method or a weakref callback is printed ("Exception ignored in ...") and
dropped. The stop request was then lost and the service ran on (seen in CI: a
classifier stopped during start-up, while the garbage collector closed a stale
socket, kept running until it was killed). Nothing has been consumed or written
before the service's own handlers are in place, so there is nothing to flush.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import NoReturn


def exit_at_once(signum: int, _frame: FrameType | None) -> NoReturn:
    os.write(2, f"stopping during start-up ({signal.Signals(signum).name})\n".encode())
    os._exit(0)


def raise_system_exit(_signum: int, _frame: FrameType | None) -> NoReturn:
    """For a signal re-raised synchronously (``signal.raise_signal``), where a
    ``SystemExit`` cannot land in a finalizer and the caller's cleanup should run."""
    raise SystemExit(0)


def exit_at_once_until_started() -> None:
    """Install :func:`exit_at_once` for SIGTERM; the service replaces it when it starts."""
    signal.signal(signal.SIGTERM, exit_at_once)
