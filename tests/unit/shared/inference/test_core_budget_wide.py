"""Runs wider than the cores share them fairly with narrow ones: a request for more
threads than there are cores holds all of them, waits its turn, and is not overtaken
forever by narrower runs; nor does it, run after run, keep the narrow ones out.

Before, whoever woke first took the free cores: a model with intra-op threads >= cores
never found them all free while single-thread runs of another model overlapped, and a
wide model in a loop took them all back before a waiting single-thread run woke."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace

from shared.inference import engine
from shared.inference.batching import FloatArray, Padded
from shared.inference.engine import Classifier, CoreBudget
from shared.inference.registry import ModelEntry
from shared.inference.settings import InferenceSettings
from shared.inference.tokenize import TextTokenizer

CORES = 2
WIDE = 8  # intra-op threads of the wide model: more than the cores
LABELS = ("negative", "neutral", "positive")
TURN_S = 1.0  # a fair turn comes within milliseconds; this long means never
RUN_S = 0.005


def _looping(target: Callable[[], None], stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.is_set():
            target()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _hold_once(budget: CoreBudget, threads: int, done: threading.Event) -> threading.Thread:
    def once() -> None:
        with budget.hold(threads):
            done.set()

    thread = threading.Thread(target=once, daemon=True)
    thread.start()
    return thread


def _run(budget: CoreBudget, threads: int) -> Callable[[], None]:
    def run() -> None:
        with budget.hold(threads):
            time.sleep(RUN_S)

    return run


def test_a_request_wider_than_the_cores_holds_all_of_them() -> None:
    budget, narrow = CoreBudget(CORES), threading.Event()
    with budget.hold(WIDE):
        thread = _hold_once(budget, 1, narrow)
        assert not narrow.wait(0.05)  # no core is left beside it
    assert narrow.wait(TURN_S)
    thread.join(TURN_S)


def test_a_wide_run_gets_its_turn_beside_overlapping_narrow_runs() -> None:
    budget, stop, wide = CoreBudget(CORES), threading.Event(), threading.Event()
    first = _looping(_run(budget, 1), stop)
    time.sleep(RUN_S / 2)  # the two narrow runs overlap: never are both cores free
    second = _looping(_run(budget, 1), stop)
    time.sleep(4 * RUN_S)
    try:
        waiting = _hold_once(budget, WIDE, wide)
        assert wide.wait(TURN_S), "the wide run never got all the cores"
    finally:
        stop.set()
        for thread in (first, second, waiting):
            thread.join(TURN_S)


def test_a_wide_run_in_a_loop_leaves_narrow_runs_their_turn() -> None:
    budget, stop, narrow = CoreBudget(CORES), threading.Event(), threading.Event()
    wide = _looping(_run(budget, WIDE), stop)
    time.sleep(4 * RUN_S)
    try:
        waiting = _hold_once(budget, 1, narrow)
        assert narrow.wait(TURN_S), "the wide run kept every core to itself"
    finally:
        stop.set()
        for thread in (wide, waiting):
            thread.join(TURN_S)


def test_narrow_runs_still_start_at_once_while_nobody_waits() -> None:
    budget, second = CoreBudget(CORES), threading.Event()
    with budget.hold(1):
        thread = _hold_once(budget, 1, second)
        assert second.wait(TURN_S)
    thread.join(TURN_S)


class _Cores:
    """The cores the runs in flight hold, across models, and the most at once."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.lock = threading.Lock()

    def run(self, cores: int) -> None:
        with self.lock:
            self.now += cores
            self.most = max(self.most, self.now)
        time.sleep(RUN_S)
        with self.lock:
            self.now -= cores


class _Model:
    """An ``OrtModel`` stand-in on CPU with ``intra_op_threads`` threads a run."""

    kind = "cpu"
    cuda_graphs = False
    has_token_type_ids = False
    providers: ClassVar[list[str]] = ["CPUExecutionProvider"]

    def __init__(self, cores: _Cores, threads: int) -> None:
        self.cores = cores
        self.intra_op_threads = threads

    def run(self, padded: Padded) -> FloatArray:
        self.cores.run(min(self.intra_op_threads, CORES))
        return np.zeros((padded.input_ids.shape[0], len(LABELS)), dtype=np.float32)


def _classifier(task: str, cores: _Cores, threads: int, parallel: int) -> Classifier:
    vocab = {"[PAD]": 0, "[UNK]": 1, "a": 2, "b": 3, "c": 4}
    tok = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = Whitespace()
    entry = ModelEntry(task, "v1", Path("/nonexistent"), LABELS, {}, 16, f"{task}-model")
    settings = InferenceSettings(intra_op_threads=threads, parallel_buckets=parallel, length_bucket_size=1)
    model: Any = _Model(cores, threads)
    return Classifier(entry, model, TextTokenizer(tok, 16), settings, "int8", "sha")


@pytest.fixture(autouse=True)
def two_cores(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(engine, "physical_cores", lambda: CORES)
    engine.core_budget.cache_clear()
    yield
    engine.core_budget.cache_clear()


def test_a_model_with_more_threads_than_cores_classifies_beside_a_busy_one() -> None:
    """As in the service: batches go to worker threads from the event loop; two batches
    of the narrow model (two buckets each, run in its pool) are always in flight."""
    cores = _Cores()
    narrow = _classifier("sentiment", cores, threads=1, parallel=CORES)
    wide = _classifier("intent", cores, threads=WIDE, parallel=1)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        with ThreadPoolExecutor(max_workers=3) as pool:

            async def keep_busy() -> None:
                while not stop.is_set():
                    await loop.run_in_executor(pool, narrow.predict, ["a", "a b"])

            busy = [asyncio.create_task(keep_busy()) for _ in range(2)]
            await asyncio.sleep(4 * RUN_S)
            try:
                result = await asyncio.wait_for(loop.run_in_executor(pool, wide.predict, ["a b c"]), TURN_S)
            finally:
                stop.set()
                await asyncio.wait_for(asyncio.gather(*busy), TURN_S)
            assert len(result) == 1

    try:
        asyncio.run(scenario())
    finally:
        narrow.close()
        wide.close()
    assert cores.most == CORES


def test_a_lost_wake_up_does_not_leave_the_head_of_the_line_asleep() -> None:
    """The waiter ahead left the line but was interrupted (a signal on the main thread)
    before waking the others: the new head of the line, with its cores free, must not
    sleep for good. Simulated by freeing the cores without a notification."""
    budget = CoreBudget(CORES)
    entered = threading.Event()
    with budget._cond:
        budget._free = 0  # every core taken by a run that ends below, unannounced

    def wait_for_a_core() -> None:
        with budget.hold(1):
            entered.set()

    waiter = threading.Thread(target=wait_for_a_core, daemon=True)
    waiter.start()
    deadline = time.monotonic() + TURN_S
    while not budget._line and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)  # asleep in the condition's wait
    with budget._cond:
        budget._free = CORES  # no notify_all: the wake-up was lost
    assert entered.wait(TURN_S), "the waiter slept on with every core free"
    waiter.join(TURN_S)
