"""The shipped models on a real GPU: CUDA provider, fp16 variant, I/O binding, CUDA graphs.

Runs only where onnxruntime-gpu sees an NVIDIA GPU (skipped elsewhere, CI included):
``pytest -m gpu tests/integration/shared/inference/test_cuda.py``. On a CPU machine
``test_engine.py`` checks instead that a GPU request fails clearly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from shared.inference.device import DeviceUnavailableError, diagnose_provider
from shared.inference.engine import Classifier
from shared.inference.microbatch import MicroBatcher
from shared.inference.registry import ModelEntry, Registry
from shared.inference.session import clear_cache
from shared.inference.settings import InferenceSettings

MODELS = Path(__file__).resolve().parents[4] / "models"


def _gpu_usable() -> bool:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    return diagnose_provider("cuda") is None


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _gpu_usable(), reason="needs onnxruntime-gpu and an NVIDIA GPU"),
]

HEADLINES = [
    "Shares surge after record profits",
    "FTSE 100 slumps as oil price crashes amid fears of a global recession and rising unemployment",
    "Bank of England holds interest rates at 0.1% as inflation stays below target",
    "Retail sales fall for a third month",
    "Pound rallies",
    "The chancellor said the economy would recover strongly once the lockdown is lifted next month",
    "Profit warning sends Tesco shares to a ten-year low",
    "BP agrees takeover of rival in a deal worth £3bn",
]
EDGE = ["", "   ", "🙂🚀📉🔥" * 10, "英国央行维持利率不变", "Какой у меня баланс?", "x" * 20_000, "Markets " * 3_000]
FP16_TOL = 0.02  # fp16 GPU kernels against the same fp16 weights run by the CPU provider (fp32 math)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry(MODELS)


@pytest.fixture(scope="module", params=["sentiment", "intent"])
def entry(request: pytest.FixtureRequest, registry: Registry) -> ModelEntry:
    task = str(request.param)
    try:
        found = registry.promoted(task)
    except Exception as exc:  # a GPU box may carry one model only
        pytest.skip(f"{task}: no promoted model here ({exc})")
    if "fp16" not in found.available_variants():
        pytest.skip(f"{task} {found.version}: no fp16 variant")
    return found


@pytest.fixture(autouse=True)
def _fresh_sessions() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


def load(entry: ModelEntry, registry: Registry, **kw: object) -> Classifier:
    return Classifier.load(entry, InferenceSettings.model_validate(kw), registry)


def test_cuda_serves_the_fp16_variant_on_the_gpu(entry: ModelEntry, registry: Registry) -> None:
    clf = load(entry, registry, device="cuda")
    assert clf.provider == "CUDAExecutionProvider"
    assert clf.variant == "fp16"
    assert clf.describe()["io_binding"] is True


def test_auto_picks_a_gpu_provider(entry: ModelEntry, registry: Registry) -> None:
    clf = load(entry, registry, device="auto")
    assert clf.provider in ("TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert clf.fallback_reasons == ()


def test_tensorrt_without_its_libraries_is_refused_by_name(entry: ModelEntry, registry: Registry) -> None:
    reason = diagnose_provider("tensorrt")
    if reason is None:
        pytest.skip("TensorRT loads here")
    with pytest.raises(DeviceUnavailableError, match="TensorrtExecutionProvider") as err:
        load(entry, registry, device="tensorrt")
    assert "fell back" in str(err.value) or "failed" in str(err.value)


def test_gpu_fp16_agrees_with_the_cpu(entry: ModelEntry, registry: Registry) -> None:
    texts = HEADLINES + EDGE
    cpu = load(entry, registry, device="cpu", variant="fp16").predict_proba(texts)
    gpu = load(entry, registry, device="cuda").predict_proba(texts)
    assert np.isfinite(gpu).all()
    np.testing.assert_allclose(gpu.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(gpu - cpu).max() < FP16_TOL
    clear_margin = np.sort(cpu, axis=1)[:, -1] - np.sort(cpu, axis=1)[:, -2] > 2 * FP16_TOL
    assert (gpu.argmax(axis=1) == cpu.argmax(axis=1))[clear_margin].all()


def test_plain_run_equals_io_binding(entry: ModelEntry, registry: Registry) -> None:
    bound = load(entry, registry, device="cuda", io_binding=True).predict_proba(HEADLINES)
    plain = load(entry, registry, device="cuda", io_binding=False).predict_proba(HEADLINES)
    np.testing.assert_allclose(bound, plain, atol=1e-3)


def test_cuda_graph_replays_follow_their_inputs(entry: ModelEntry, registry: Registry) -> None:
    """One captured shape replayed with other texts must give those texts' results, not
    the captured ones (stale device buffers), in order and for short final buckets."""
    plain = load(entry, registry, device="cuda", io_binding=False, max_batch=4)
    graphs = load(entry, registry, device="cuda", cuda_graphs=True, max_batch=4)
    assert graphs.describe()["cuda_graphs"] is True
    first, second = HEADLINES[:4], list(reversed(HEADLINES[4:]))
    for batch in (first, second, first[:3], second[:1], HEADLINES + EDGE[:3]):
        np.testing.assert_allclose(graphs.predict_proba(batch), plain.predict_proba(batch), atol=1e-3)


def test_microbatcher_on_the_gpu_matches_direct_predict(entry: ModelEntry, registry: Registry) -> None:
    clf = load(entry, registry, device="cuda", max_batch=8, max_wait_ms=5)
    direct = clf.predict(HEADLINES * 3)

    async def through_batcher() -> list[str]:
        async with MicroBatcher.from_settings(clf, clf.settings) as batcher:
            preds = await asyncio.gather(*(batcher.classify(t) for t in HEADLINES * 3))
        return [p.label for p in preds]

    assert asyncio.run(through_batcher()) == [p.label for p in direct]
