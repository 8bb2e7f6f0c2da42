"""Configuration reference generated from the settings classes (``tonewatch config docs``)."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from shared.config import ServiceSettings

SERVICE_SETTINGS = {
    "shared": "shared.config:ServiceSettings",
    "classifier": "services.classifier.config:ClassifierSettings",
    "aggregator": "services.aggregator.config:AggregatorSettings",
    "router": "services.router.config:RouterSettings",
    "alerter": "services.alerter.config:AlerterSettings",
    "api": "services.api.config:ApiSettings",
}


def _load(ref: str) -> type[ServiceSettings]:
    module, name = ref.split(":")
    cls: type[ServiceSettings] = getattr(importlib.import_module(module), name)
    return cls


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return (
            "(see nested)"
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
            else "(computed)"
        )
    value = info.get_default()
    if isinstance(value, SecretStr):
        return "(secret)"
    return "" if value is None else str(value)


def _rows(prefix: str, model: type[BaseModel], owner: str, skip: set[str]) -> list[dict[str, Any]]:
    rows = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows += _rows(f"{prefix}{name.upper()}__", annotation, owner, set())
            continue
        env = info.validation_alias if isinstance(info.validation_alias, str) else f"{prefix}{name.upper()}"
        rows.append({"env": env, "service": owner, "default": _default(info), "description": info.description or ""})
    return rows


def reference() -> list[dict[str, Any]]:
    """One row per environment variable: name, owning service, default, description."""
    shared_fields = set(ServiceSettings.model_fields)
    rows = _rows("TW_", ServiceSettings, "all", set())
    for service, ref in SERVICE_SETTINGS.items():
        if service != "shared":
            rows += _rows("TW_", _load(ref), service, shared_fields)
    return rows
