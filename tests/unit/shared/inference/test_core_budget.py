"""The ONNX runs of every CPU classifier in a process share its physical cores: the
classifier service's two batches in flight, one in the sentiment model and one in the
intent model, each with its own pool of ``parallel_buckets`` workers, kept up to 4
single-thread runs going on 2 cores."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from shared.inference import engine
from shared.inference.batching import FloatArray, Padded
from shared.inference.engine import Classifier
from shared.inference.registry import ModelEntry
from shared.inference.settings import InferenceSettings
from shared.inference.tokenize import TextTokenizer

CORES = 2
LABELS = ("negative", "neutral", "positive")


class _Runs:
    """Counts the runs in flight across models; a run waits a moment for more to join it,
    so runs that may overlap do."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.cond = threading.Condition()

    def run(self) -> None:
        with self.cond:
            self.now += 1
            self.most = max(self.most, self.now)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.now > CORES, timeout=0.2)
            self.now -= 1
            self.cond.notify_all()


class _Model:
    """An ``OrtModel`` stand-in on CPU with one intra-op thread."""

    kind = "cpu"
    cuda_graphs = False
    has_token_type_ids = False
    providers: ClassVar[list[str]] = ["CPUExecutionProvider"]
    intra_op_threads = 1

    def __init__(self, runs: _Runs) -> None:
        self.runs = runs

    def run(self, padded: Padded) -> FloatArray:
        self.runs.run()
        return np.zeros((padded.input_ids.shape[0], len(LABELS)), dtype=np.float32)


def _tokenizer() -> TextTokenizer:
    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    return TextTokenizer(tok, 16)


def _classifier(task: str, runs: _Runs) -> Classifier:
    entry = ModelEntry(task, "v1", Path("/nonexistent"), LABELS, {}, 16, f"{task}-model")
    # the classifier service's settings on 2 cores: 1 thread a run, 2 buckets at once
    settings = InferenceSettings(intra_op_threads=1, parallel_buckets=CORES, length_bucket_size=1)
    model: Any = _Model(runs)
    return Classifier(entry, model, _tokenizer(), settings, "int8", "sha")


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    budget = getattr(engine, "core_budget", None)
    monkeypatch.setattr(engine, "physical_cores", lambda: CORES, raising=False)
    if budget is not None:
        budget.cache_clear()
    yield
    if budget is not None:
        budget.cache_clear()


def _at_once(*calls: Any) -> None:
    threads = [threading.Thread(target=call) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_two_classifiers_called_at_once_run_no_more_onnx_runs_than_cores() -> None:
    runs = _Runs()
    sentiment, intent = _classifier("sentiment", runs), _classifier("intent", runs)
    texts = ["a", "a b", "a b c", "c", "b c", "a a a a"]  # six length buckets each
    try:
        _at_once(lambda: sentiment.predict(texts), lambda: intent.predict(texts))
    finally:
        sentiment.close()
        intent.close()
    assert runs.most == CORES


def test_single_bucket_calls_beside_a_pooled_one_share_the_cores_too() -> None:
    runs = _Runs()
    pooled, alone, alone_too = (_classifier(t, runs) for t in ("sentiment", "intent", "other"))
    try:
        _at_once(
            lambda: pooled.predict(["a", "a b", "a b c", "c"]),
            lambda: alone.predict(["a"]),  # one bucket: run on the caller's thread
            lambda: alone_too.predict(["b"]),
        )
    finally:
        for clf in (pooled, alone, alone_too):
            clf.close()
    assert runs.most <= CORES


def test_a_run_wanting_more_threads_than_cores_holds_them_all_and_still_runs() -> None:
    budget = engine.CoreBudget(2)
    with budget.hold(8):
        pass
    with budget.hold(1), budget.hold(1):
        pass  # two single-thread runs fit beside each other
