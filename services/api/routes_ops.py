"""Operations: ``/healthz`` (liveness), ``/readyz`` (dependencies and models),
``/metrics`` (Prometheus) and ``/v1/status`` (model versions, inference device)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text

from services.api.auth import require
from services.api.deps import Deps, get_deps, get_settings
from services.api.errors import error_body
from services.classifier.config import ClassifierSettings, fresh_statuses, redis_seconds, status_key
from shared.inference.registry import ModelEntry, RegistryError
from shared.labels import TASKS
from shared.model_names import last_component, looks_like_path
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


def failed_check(name: str, exc: Exception) -> str:
    """What ``/readyz`` says of a failed check: its state and the error's class, never the
    error's message, which names hosts and ports, the database or the models' folder:
    ``/readyz`` stays open to probes when reads need a key. The log has the whole error."""
    log.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
    if name.startswith("model:"):
        return f"no servable promoted model ({type(exc).__name__}; the API log says why)"
    return f"unreachable ({type(exc).__name__}; the API log says why)"


async def _timed(name: str, check: Callable[[], Awaitable[str]], timeout_s: float) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=timeout_s)
        ok = True
    except TimeoutError:
        ok, detail = False, f"no answer within {timeout_s:.1f}s"
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", reported with its class
        ok, detail = False, failed_check(name, exc)
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
    """Readiness: Kafka, PostgreSQL and Redis answer and the promoted models are present.
    Each check names its component and state, never a host, URL or path."""
    settings = get_settings(request)

    async def kafka() -> str:
        await kafka_check(settings.kafka)
        return "reachable"

    async def postgres() -> str:
        async with deps.sessions() as session:
            await session.execute(text("SELECT 1"))
        return "reachable"

    async def redis() -> str:
        await deps.redis.ping()
        return "reachable"

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


def shown_name(name: str) -> str | None:
    """A base model's name as ``/v1/status`` shows it: a path (in a card written before
    cards recorded names only, e.g. ``/srv/ml/alice/runs/finbert-ft/checkpoint-500``) by
    its last folder name, null where it has none to show (``/``, ``~alice``)."""
    if not looks_like_path(name):
        return name
    return last_component(name) or None


def base_model_view(base: dict[str, Any]) -> dict[str, Any]:
    """What ``/v1/status`` shows of a card's base model: what it is, never where the server
    keeps it (:data:`BASE_MODEL_FIELDS`, the name never a path)."""
    view = {k: base[k] for k in BASE_MODEL_FIELDS if k in base}
    if isinstance(view.get("name"), str):
        view["name"] = shown_name(view["name"])
    return view


def shown_error(exc: Exception, root: Path) -> str:
    """A registry error as ``/v1/status`` shows it: the models' folder, which the message
    names (``no model sentiment/v9 under /srv/tonewatch/models``), is written ``models``,
    so the reason stays readable (missing marker, bad JSON, which version) without telling
    a client where the server keeps its files. The log has the whole message."""
    message = str(exc)
    # absolute spellings only: a relative root ("m") would also match inside words
    for folder in sorted({str(root.absolute()), str(root.resolve())}, key=len, reverse=True):
        if folder != root.anchor:
            message = message.replace(folder, "models")
    return message


def model_info(deps: Deps, task: str) -> dict[str, Any]:
    """What the registry says about the promoted model of ``task``."""
    try:
        entry = deps.registry.promoted(task)
    except RegistryError as exc:
        log.warning("status: no promoted %s model: %s", task, exc)
        return {"task": task, "promoted": False, "error": shown_error(exc, deps.registry.root)}
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
        info["base_model"] = base_model_view(base)
    metrics = card.get("metrics")
    if isinstance(metrics, dict):
        info["metrics"] = {
            variant: {k: v for k, v in m.items() if k in ("accuracy", "macro_f1", "ece", "seq_per_s_cpu", "status")}
            for variant, m in metrics.items()
            if isinstance(m, dict)
        }
    return info


def _models(replica: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in replica.get("models") or () if isinstance(m, dict)]


def pinned(replica: dict[str, Any]) -> bool:
    """Whether a replica serves a model version chosen by ``TW_CLASSIFIER_<TASK>_VERSION``."""
    return any(m.get("pinned") is True for m in _models(replica))


def served_versions(replicas: list[dict[str, Any]], task: str, group: str) -> list[str]:
    """The versions of ``task`` the replicas of the main ``group`` serve, pinned models left
    out: a shadow group or a pinned model serves another version on purpose; counted, it
    made the promoted version look not served, with a note that a restart would fix it."""
    return sorted(
        {
            str(m.get("version"))
            for r in replicas
            if r.get("group") == group
            for m in _models(r)
            if m.get("task") == task and m.get("pinned") is not True
        }
    )


def classifier_view(replicas: list[dict[str, Any]], group: str = DEFAULT_CLASSIFIER_GROUP) -> dict[str, Any] | None:
    """The classifier replicas' statuses: each under ``replicas``, and at the top those of
    one of them for the dashboard's device chip: of the main ``group`` and not pinned first,
    then the one published last (the alphabetically first group could be a shadow)."""
    if not replicas:
        return None
    first = max(
        replicas, key=lambda r: (r.get("group") == group, not pinned(r), _published_at(r), r.get("replica") or "")
    )
    view = {k: first.get(k) for k in ("group", "replica", "models", "device", "provider", "variant")}
    return {**view, "replicas": replicas}


def _published_at(replica: dict[str, Any]) -> float:
    try:
        return float(replica.get("published_at") or 0)
    except (TypeError, ValueError):
        return 0.0


def with_serving(
    info: dict[str, Any], replicas: list[dict[str, Any]], group: str = DEFAULT_CLASSIFIER_GROUP
) -> dict[str, Any]:
    """``info`` with the versions of its task the classifier serves (``serving``, see
    :func:`served_versions`) and whether one of them is not the promoted version (``serving_differs``;
    null while none reports): the classifier reads the registry at start-up only."""
    task = info["task"]
    served = served_versions(replicas, task, group)
    differs = None if not served else any(v != info.get("version") for v in served)
    out = {**info, "serving": served, "serving_differs": differs}
    if differs:
        promoted = info.get("version", "no version") if info.get("promoted") else "no version"
        out["serving_note"] = (
            f"{promoted} is promoted, the classifier serves {', '.join(served)}: a replica serves the promoted "
            f"version after a restart (replicas of other groups than {group} and models pinned by "
            f"TW_CLASSIFIER_{task.upper()}_VERSION are not counted)"
        )
    return out


@router.get("/v1/status", dependencies=[Depends(require("read"))])
async def status(request: Request, deps: Annotated[Deps, Depends(get_deps)]) -> dict[str, Any]:
    """The promoted model versions (from the registry), the versions the classifier serves,
    and each classifier replica's live inference status under this deployment's topic
    prefix (Redis hash ``tw:classifier:status:<prefix>``, a field per group and replica)."""
    settings = get_settings(request)
    group = settings.classifier_group_id
    replicas: list[dict[str, Any]] = []
    classifier: Any = None
    try:
        replicas = await classifier_statuses(deps.redis, status_key(settings.topics.prefix))
        classifier = classifier_view(replicas, group)
    except Exception as exc:  # noqa: BLE001 - status is best effort
        log.info("classifier status unavailable: %s", exc)
        classifier = {"error": f"{type(exc).__name__}: {exc}"}
    models = [with_serving(await asyncio.to_thread(model_info, deps, t), replicas, group) for t in TASKS]
    return {"models": models, "classifier": classifier}


async def classifier_statuses(redis: Redis, key: str) -> list[dict[str, Any]]:
    """The fresh statuses of the hash ``key`` by Redis's clock, read with it at once: the
    API host's clock, 60 s off, showed no classifier at all."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.time()
        pipe.hgetall(key)
        now, fields = await pipe.execute()
    return fresh_statuses(fields, redis_seconds(now))
