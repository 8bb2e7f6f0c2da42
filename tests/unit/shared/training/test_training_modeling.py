"""Temperature fitting (numpy only)."""

from __future__ import annotations

import numpy as np

from shared.training.modeling import fit_temperature


def test_overconfident_logits_get_t_above_one() -> None:
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 300)
    logits = rng.normal(0, 1, (300, 3))
    right = rng.random(300) < 0.7
    pred = np.where(right, gold, (gold + 1) % 3)
    logits[np.arange(300), pred] += 8.0  # 70% accurate but ~100% confident
    t = fit_temperature(logits, gold.tolist())
    assert t > 2.0
    scaled = logits / t
    p = np.exp(scaled - scaled.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert abs(p.max(1).mean() - 0.7) < 0.1


def test_empty_validation_keeps_t_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), []) == 1.0


def test_task_defaults_fill_unset_fields() -> None:
    from shared.training.train import TASK_DEFAULTS, TrainConfig

    s = TrainConfig("sentiment")
    assert (s.max_length, s.pooling, s.epochs) == (64, TASK_DEFAULTS["sentiment"]["pooling"], 6)
    assert s.class_weights is True
    i = TrainConfig("intent", lr=1e-4, pooling="cls")
    assert (i.max_length, i.lr, i.pooling, i.class_weights) == (48, 1e-4, "cls", False)
    assert TrainConfig("sentiment", class_weights=False).class_weights is False
