"""ONNX Runtime sessions: one per model file content, provider and settings, per process.

CPU: graph optimisation level ALL, intra-op threads = physical cores unless
configured, sequential execution. GPU: I/O binding (inputs copied once, output
bound on the device) and optional CUDA graphs (one captured graph per padded
shape). :func:`open_session` checks the session really runs on the provider it
asked for, because ONNX Runtime falls back to CPU without raising.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from shared.inference.batching import FloatArray, Padded
from shared.inference.device import PROVIDERS, Kind, check_active, physical_cores
from shared.inference.registry import ModelFile
from shared.inference.settings import InferenceSettings

CUDA_GRAPH_WIDTH_MULTIPLE = 16

_CACHE: dict[tuple[object, ...], OrtModel] = {}
_CACHE_LOCK = threading.Lock()


def session_options(kind: Kind, settings: InferenceSettings) -> ort.SessionOptions:
    """Session options for ``kind``."""
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.enable_mem_pattern = True
    so.enable_cpu_mem_arena = True
    so.inter_op_num_threads = settings.inter_op_threads
    if kind == "cpu":
        so.intra_op_num_threads = settings.intra_op_threads or max(1, physical_cores() // settings.parallel_buckets)
        spin = "1" if settings.allow_spinning else "0"
        so.add_session_config_entry("session.intra_op.allow_spinning", spin)
        so.add_session_config_entry("session.inter_op.allow_spinning", spin)
    else:
        so.intra_op_num_threads = settings.intra_op_threads or 1
    so.log_severity_level = 2
    return so


def provider_list(
    kind: Kind,
    settings: InferenceSettings,
    model_path: Path,
    input_names: Sequence[str],
    max_length: int,
) -> list[str | tuple[str, dict[str, Any]]]:
    """The ``providers`` argument of ``InferenceSession`` for ``kind``."""
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    cuda_opts: dict[str, Any] = {"device_id": settings.device_id}
    if kind == "cuda":
        if settings.cuda_graphs:
            cuda_opts["enable_cuda_graph"] = "1"
        return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]
    rows = settings.bucket_rows(on_gpu=True)
    cache = settings.trt_cache_dir or model_path.parent / ".trt-cache"
    cache.mkdir(parents=True, exist_ok=True)

    def shapes(r: int, w: int) -> str:
        return ",".join(f"{name}:{r}x{w}" for name in input_names)

    trt_opts: dict[str, Any] = {
        "device_id": settings.device_id,
        "trt_fp16_enable": True,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache),
        "trt_profile_min_shapes": shapes(1, 1),
        "trt_profile_opt_shapes": shapes(rows, max(1, max_length // 2)),
        "trt_profile_max_shapes": shapes(max(rows, settings.max_batch), max_length),
    }
    return [("TensorrtExecutionProvider", trt_opts), ("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]


class OrtModel:
    """A loaded ONNX graph: feeds only the inputs it declares, returns float32 logits."""

    def __init__(self, session: ort.InferenceSession, kind: Kind, settings: InferenceSettings) -> None:
        self.session = session
        self.kind = kind
        self.settings = settings
        self.input_names = tuple(i.name for i in session.get_inputs())
        self.has_token_type_ids = "token_type_ids" in self.input_names
        out = session.get_outputs()[0]
        self.output_name = out.name
        self.out_dtype = np.float16 if out.type == "tensor(float16)" else np.float32
        self.use_io_binding = kind != "cpu" and settings.io_binding
        self.cuda_graphs = kind == "cuda" and settings.cuda_graphs
        self._graphs: dict[tuple[int, int], _GraphSlot] = {}
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        """Providers of the live session, best first."""
        return list(self.session.get_providers())

    @property
    def intra_op_threads(self) -> int:
        """Configured intra-op thread count."""
        return int(self.session.get_session_options().intra_op_num_threads)

    def feeds(self, padded: Padded) -> dict[str, np.ndarray[Any, Any]]:
        """Input arrays by name; ``token_type_ids`` only when the graph has it."""
        all_feeds = {
            "input_ids": padded.input_ids,
            "attention_mask": padded.attention_mask,
            "token_type_ids": padded.token_type_ids,
        }
        return {name: all_feeds[name] for name in self.input_names}

    def run(self, padded: Padded) -> FloatArray:
        """Logits (float32) for one padded bucket, dummy rows included."""
        if self.cuda_graphs:
            return self._run_graph(padded)
        feeds = self.feeds(padded)
        if not self.use_io_binding:
            out = self.session.run([self.output_name], feeds)[0]
            return np.asarray(out, dtype=np.float32)
        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output(self.output_name, "cuda", self.settings.device_id)
        self.session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def _run_graph(self, padded: Padded) -> FloatArray:
        shape = padded.input_ids.shape
        key = (int(shape[0]), int(shape[1]))
        with self._lock:  # a captured graph owns fixed buffers: one run at a time
            slot = self._graphs.get(key)
            if slot is None:
                slot = _GraphSlot(self, key, len(self._graphs) + 1, padded)
                self._graphs[key] = slot
            return slot.run(padded)


class _GraphSlot:
    """Fixed device buffers + binding for one shape; ORT captures its CUDA graph."""

    def __init__(self, model: OrtModel, shape: tuple[int, int], graph_id: int, first: Padded) -> None:
        dev = model.settings.device_id
        self.model = model
        self.inputs = {
            name: ort.OrtValue.ortvalue_from_numpy(arr, "cuda", dev) for name, arr in model.feeds(first).items()
        }
        n_out = int(model.session.get_outputs()[0].shape[-1])
        self.output = ort.OrtValue.ortvalue_from_shape_and_type((shape[0], n_out), model.out_dtype, "cuda", dev)
        self.binding = model.session.io_binding()
        for name, value in self.inputs.items():
            self.binding.bind_ortvalue_input(name, value)
        self.binding.bind_ortvalue_output(model.output_name, self.output)
        self.run_options = ort.RunOptions()
        self.run_options.add_run_config_entry("gpu_graph_id", str(graph_id))

    def run(self, padded: Padded) -> FloatArray:
        for name, arr in self.model.feeds(padded).items():
            self.inputs[name].update_inplace(arr)
        self.model.session.run_with_iobinding(self.binding, self.run_options)
        return np.asarray(self.binding.copy_outputs_to_cpu()[0], dtype=np.float32)


def open_session(
    model_file: ModelFile,
    kind: Kind,
    settings: InferenceSettings,
    input_names: Sequence[str],
    max_length: int,
) -> OrtModel:
    """The process-wide session for ``model_file`` on ``kind`` (created once), built from
    its verified bytes, never by opening the path again (another file may have been renamed
    over it since). Cached by path and sha256: a file re-quantized in place gets a new one,
    and the cache lets go of the sessions of the path's earlier content.

    Raises :class:`~shared.inference.device.DeviceUnavailableError` when ORT fell
    back from the requested provider.
    """
    path = model_file.path
    key = (str(path.resolve()), model_file.sha256, kind, max_length, *_session_key(kind, settings))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        providers = provider_list(kind, settings, path, input_names, max_length)
        session = _session_from_bytes(model_file.data, session_options(kind, settings), providers)
        check_active(kind, session.get_providers())
        model = OrtModel(session, kind, settings)
        for stale in [k for k in _CACHE if k[0] == key[0] and k[1] != key[1]]:
            del _CACHE[stale]
        _CACHE[key] = model
        return model


def _session_from_bytes(
    data: bytes, options: ort.SessionOptions, providers: list[str | tuple[str, dict[str, Any]]]
) -> ort.InferenceSession:
    """An ONNX Runtime session parsed from ``data``. ORT's Python wrapper keeps ``data`` (the
    whole file) for as long as the session lives, only to re-create the session on the CPU
    when a GPU provider fails at run time: that copy is dropped, and such a failure raised
    instead (like a fallback at load, see :func:`~shared.inference.device.check_active`)."""
    session = ort.InferenceSession(data, sess_options=options, providers=providers)
    session.disable_fallback()
    session._model_bytes = None
    return session


def _session_key(kind: Kind, s: InferenceSettings) -> tuple[object, ...]:
    """Settings that shape the session (batching knobs do not, except TensorRT profiles)."""
    key: tuple[object, ...] = (s.intra_op_threads, s.inter_op_threads, s.allow_spinning, s.parallel_buckets)
    if kind != "cpu":
        key += (s.device_id, s.cuda_graphs, s.io_binding)
    if kind == "tensorrt":
        key += (s.trt_cache_dir, s.bucket_rows(on_gpu=True), s.max_batch, s.max_length)
    return key


def clear_cache() -> None:
    """Drop cached sessions (tests, model hot swap)."""
    with _CACHE_LOCK:
        _CACHE.clear()


__all__ = ["PROVIDERS", "OrtModel", "clear_cache", "open_session", "provider_list", "session_options"]
