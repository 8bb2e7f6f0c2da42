"""The service runs the bytes whose sha256 it reports: the variant's file is read once,
verified, and the session built from those bytes; sessions are cached by content."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from shared.inference import session  # noqa: E402
from shared.inference.engine import Classifier  # noqa: E402
from shared.inference.registry import IntegrityError, Registry  # noqa: E402
from shared.inference.session import clear_cache  # noqa: E402
from shared.inference.settings import InferenceSettings  # noqa: E402
from shared.labels import LABELS  # noqa: E402

CPU_INT8 = InferenceSettings(device="cpu", variant="int8")


def _graph(which: str) -> bytes:
    """A tiny classifier whose logits are the token count times fixed weights: model A
    always answers the first label, model B the last; ``which`` is in its metadata."""
    from onnx import TensorProto, helper

    weights = [1.0, 0.0, -1.0] if which == "A" else [-1.0, 0.0, 1.0]
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["attention_mask"], ["mask"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["mask", "axes"], ["count"], keepdims=1),
            helper.make_node("Mul", ["count", "weights"], ["logits"]),
        ],
        "tiny",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["b", "s"]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", 3])],
        [
            helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
            helper.make_tensor("weights", TensorProto.FLOAT, [1, 3], weights),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"which": which})
    return bytes(model.SerializeToString())


def _tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "shares": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))
    return path


@pytest.fixture(autouse=True)
def _no_cached_sessions() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.onnx").write_bytes(_graph("A"))
    registry = Registry(tmp_path / "models")
    card = {"name": "tiny", "max_length": 16, "inputs": ["input_ids", "attention_mask"]}
    files = {"model.int8.onnx": src / "a.onnx", "tokenizer.json": _tokenizer(src / "tokenizer.json")}
    registry.register("sentiment", "v1", card, files=files)
    return registry


def _which(clf: Classifier) -> str:
    return str(clf.model.session.get_modelmeta().custom_metadata_map["which"])


def test_a_file_renamed_over_the_variant_after_hashing_is_not_what_runs(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-quantize's ``os.replace`` between the hash and the session: the session still
    runs the bytes that were hashed, and the sha256 reported is theirs."""
    entry = reg.get("sentiment", "v1")
    target = entry.variant_path("int8")
    other = tmp_path / "b.onnx"
    other.write_bytes(_graph("B"))
    real = ort.InferenceSession
    given: list[Any] = []

    def replaced_first(model: Any, *args: Any, **kwargs: Any) -> Any:
        os.replace(other, target)  # lands after the file was read and verified
        given.append(model)
        return real(model, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", replaced_first)
    clf = Classifier.load(entry, CPU_INT8, registry=reg)
    holders = sys.getrefcount(given[0]) - 2  # less the list above and getrefcount's own argument

    assert _which(clf) == "A"
    assert clf.predict(["shares"])[0].label == LABELS["sentiment"][0]
    assert clf.sha == clf.describe()["sha256"] == hashlib.sha256(_graph("A")).hexdigest()
    assert isinstance(given[0], bytes) and hashlib.sha256(given[0]).hexdigest() == clf.sha
    assert holders == 0  # nothing keeps the whole file once the session exists (ORT's wrapper neither)
    clf.close()


def test_a_reload_after_the_file_changed_gets_a_new_session(reg: Registry) -> None:
    first = Classifier.load(reg.get("sentiment", "v1"), CPU_INT8, registry=reg)
    assert _which(first) == "A"
    path = reg.get("sentiment", "v1").variant_path("int8")
    path.write_bytes(_graph("B"))  # re-quantized in place, card rewritten to match
    entry = reg.register("sentiment", "v1", dict(reg.get("sentiment", "v1").card))

    second = Classifier.load(entry, CPU_INT8, registry=reg)
    assert _which(second) == "B" and second.model is not first.model
    assert second.sha == hashlib.sha256(_graph("B")).hexdigest()
    assert second.predict(["shares"])[0].label == LABELS["sentiment"][-1]
    assert Classifier.load(entry, CPU_INT8, registry=reg).model is second.model  # same content: cached
    assert list(session._CACHE.values()) == [second.model]  # the old content's session let go


def test_bytes_that_do_not_match_the_card_never_reach_onnx_runtime(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = reg.get("sentiment", "v1")
    entry.variant_path("int8").write_bytes(_graph("B"))
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: pytest.fail("session built from unverified bytes"))
    with pytest.raises(IntegrityError, match=r"model\.int8\.onnx"):
        Classifier.load(entry, CPU_INT8, registry=reg)
