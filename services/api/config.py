"""Settings of the HTTP API and dashboard (env prefix ``TW_``, e.g. ``TW_PORT``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config import ServiceSettings
from shared.inference.registry import default_models_dir


class ApiSettings(ServiceSettings):
    """The API process: where it listens, its request limits and read access policy."""

    host: str = Field(default="127.0.0.1", description="Interface to listen on.")
    port: int = Field(default=8080, ge=1, le=65535, description="TCP port of the API and dashboard.")
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body accepted; larger ones get 413."
    )
    max_events_per_request: int = Field(default=1000, ge=1, description="Most events one POST /v1/events may carry.")
    sse_poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the live alert feed polls the alerts table."
    )
    sse_heartbeat_s: float = Field(
        default=15.0, gt=0, description="Idle time after which the alert stream sends a keep-alive comment."
    )
    require_key_for_reads: bool = Field(
        default=False, description="Require an API key with the read scope on GET endpoints too."
    )
    models_dir: Path = Field(default_factory=default_models_dir, description="Model registry folder.")
    readiness_timeout_s: float = Field(default=3.0, gt=0, description="Time limit of each /readyz check.")
