"""Operations: ``/healthz`` (liveness), ``/readyz`` (dependencies and models),
``/metrics`` (Prometheus) and ``/v1/status`` (model versions, inference device)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text

from services.api.auth import require
from services.api.deps import Deps, get_deps, get_settings
from services.api.errors import error_body
from services.classifier.config import ClassifierSettings, fresh_statuses, status_key
from shared.inference.registry import ModelEntry, RegistryError
from shared.labels import TASKS
from shared.startup import kafka_check

router = APIRouter(tags=["operations"])
log = logging.getLogger("tonewatch.api.ops")
DEFAULT_CLASSIFIER_GROUP = ClassifierSettings.model_fields["group_id"].default
CARD_FIELDS = ("name", "version", "created_at", "base_model", "max_length")
# What /v1/status (an open read) shows of a card's base model: what it is, not where the
# server keeps it (its ``path``).
BASE_MODEL_FIELDS = ("name", "package", "version", "short", "model_type", "layers", "hidden_size", "weights_sha256")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def _timed(name: str, check: Callable[[], Awaitable[str]], timeout_s: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=timeout_s)
        ok = True
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout_s:.1f}s"
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", reported with its cause
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    return {"name": name, "ok": ok, "detail": detail, "latency_ms": round(1000 * (time.perf_counter() - start), 1)}


def promoted_entry(deps: Deps, task: str) -> ModelEntry:
    """The promoted model of ``task`` with at least one readable ONNX variant (not loaded)."""
    entry = deps.registry.promoted(task)
    variants = entry.available_variants()
    if not variants:
        raise RegistryError(f"{task}/{entry.version} has no ONNX variant")
    with entry.variant_path(variants[0]).open("rb") as fh:
        fh.read(16)
    return entry


@router.get("/readyz", responses={503: {"description": "A dependency is not ready"}})
async def readyz(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> JSONResponse:
    """Readiness: Kafka, PostgreSQL and Redis answer and the promoted models are present."""
    settings = get_settings(request)

    async def kafka() -> str:
        await kafka_check(settings.kafka)
        return settings.kafka.bootstrap_servers

    async def postgres() -> str:
        async with deps.sessions() as session:
            await session.execute(text("SELECT 1"))
        return settings.postgres.redacted_url()

    async def redis() -> str:
        await deps.redis.ping()
        return "PONG"

    def model(task: str) -> Callable[[], Awaitable[str]]:
        async def check() -> str:
            entry = await asyncio.to_thread(promoted_entry, deps, task)
            return f"{entry.version} ({', '.join(entry.available_variants())})"

        return check

    checks = {"kafka": kafka, "postgres": postgres, "redis": redis, **{f"model:{t}": model(t) for t in TASKS}}
    timeout = settings.readiness_timeout_s
    results = list(await asyncio.gather(*(_timed(n, c, timeout) for n, c in checks.items())))
    if all(r["ok"] for r in results):
        return JSONResponse({"status": "ready", "checks": results})
    failed = ", ".join(r["name"] for r in results if not r["ok"])
    return JSONResponse(error_body("not_ready", f"not ready: {failed}", results), status_code=503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def prometheus_metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def model_info(deps: Deps, task: str) -> dict[str, Any]:
    """What the registry says about the promoted model of ``task``."""
    try:
        entry = deps.registry.promoted(task)
    except RegistryError as exc:
        return {"task": task, "promoted": False, "error": str(exc)}
    card = entry.card
    info: dict[str, Any] = {
        "task": task,
        "promoted": True,
        "version": entry.version,
        "name": entry.name,
        "variants": list(entry.available_variants()),
    }
    info.update({k: card[k] for k in CARD_FIELDS if k in card and k not in info})
    base = info.get("base_model")
    if isinstance(base, dict):
        info["base_model"] = {k: base[k] for k in BASE_MODEL_FIELDS if k in base}
    metrics = card.get("metrics")
    if isinstance(metrics, dict):
        info["metrics"] = {
            variant: {k: v for k, v in m.items() if k in ("accuracy", "macro_f1", "ece", "seq_per_s_cpu", "status")}
            for variant, m in metrics.items()
            if isinstance(m, dict)
        }
    return info


def classifier_view(replicas: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The classifier replicas' statuses: each under ``replicas``, and at the top those of
    one of them (of the default group when it reports) for the dashboard's device chip."""
    if not replicas:
        return None
    first = min(replicas, key=lambda r: r.get("group") != DEFAULT_CLASSIFIER_GROUP)
    view = {k: first.get(k) for k in ("group", "replica", "models", "device", "provider", "variant")}
    return {**view, "replicas": replicas}


def with_serving(info: dict[str, Any], replicas: list[dict[str, Any]]) -> dict[str, Any]:
    """``info`` with the versions of its task the classifier replicas serve (``serving``)
    and whether one of them is not the promoted version (``serving_differs``; null while
    no replica reports): the classifier reads the registry at start-up only."""
    task = info["task"]
    served = sorted({str(m.get("version")) for r in replicas for m in r.get("models") or () if m.get("task") == task})
    differs = None if not served else any(v != info.get("version") for v in served)
    out = {**info, "serving": served, "serving_differs": differs}
    if differs:
        promoted = info.get("version", "no version") if info.get("promoted") else "no version"
        out["serving_note"] = (
            f"{promoted} is promoted, the classifier serves {', '.join(served)}: a replica serves the promoted "
            f"version after a restart, unless started with TW_CLASSIFIER_{task.upper()}_VERSION"
        )
    return out


@router.get("/v1/status", dependencies=[Depends(require("read"))])
async def status(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> dict[str, Any]:
    """The promoted model versions (from the registry), the versions the classifier serves,
    and each classifier replica's live inference status under this deployment's topic
    prefix (Redis hash ``tw:classifier:status:<prefix>``, a field per group and replica)."""
    settings = get_settings(request)
    replicas: list[dict[str, Any]] = []
    classifier: Any = None
    try:
        replicas = fresh_statuses(await deps.redis.hgetall(status_key(settings.topics.prefix)), time.time())
        classifier = classifier_view(replicas)
    except Exception as exc:  # noqa: BLE001 - status is best effort
        log.info("classifier status unavailable: %s", exc)
        classifier = {"error": f"{type(exc).__name__}: {exc}"}
    models = [with_serving(await asyncio.to_thread(model_info, deps, t), replicas) for t in TASKS]
    return {"models": models, "classifier": classifier}
