"""Temperature folding works for every kind of classification head."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from shared.training.modeling import apply_temperature, final_linear  # noqa: E402

SMALL = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}


@pytest.mark.parametrize(
    ("config_cls", "model_cls"),
    [
        ("BertConfig", "BertForSequenceClassification"),  # classifier: one Linear
        ("MPNetConfig", "MPNetForSequenceClassification"),  # classifier: dense -> out_proj
        ("RobertaConfig", "RobertaForSequenceClassification"),
    ],
)
def test_temperature_divides_the_logits(config_cls: str, model_cls: str) -> None:
    torch.manual_seed(0)
    config = getattr(transformers, config_cls)(vocab_size=64, num_labels=3, max_position_embeddings=40, **SMALL)
    model = getattr(transformers, model_cls)(config).train(False)
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 9, 10, 2, 1]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
    with torch.no_grad():
        before = model(input_ids=ids, attention_mask=mask).logits
        layer = final_linear(model)
        assert isinstance(layer, torch.nn.Linear) and layer.out_features == 3
        apply_temperature(model, 2.5)
        after = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(after, before / 2.5, atol=1e-5)
