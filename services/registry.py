"""The services tonewatch runs, by name, and how to start each one.

Importing this module imports no service: each runner is resolved on demand.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

SERVICES: dict[str, str] = {
    "classifier": "services.classifier.app",
    "aggregator": "services.aggregator.app",
    "router": "services.router.app",
    "alerter": "services.alerter.app",
    "api": "services.api.app",
}


def entrypoint(name: str) -> Callable[[], int]:
    """The service's ``main()``: reads its settings from the environment, runs
    until stopped, returns the process exit code."""
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r}; choose one of: {', '.join(SERVICES)}")
    module = importlib.import_module(SERVICES[name])
    main: Callable[[], int] = module.main
    return main
