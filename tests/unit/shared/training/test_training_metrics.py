"""Metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from shared.training.metrics import (
    bootstrap_interval,
    expected_calibration_error,
    macro_f1,
    report,
    softmax,
)

LABELS = ("a", "b", "c")


def test_report_per_class_and_confusion() -> None:
    gold = [0, 0, 1, 1, 2, 2]
    probs = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.2, 0.7, 0.1],
            [0.1, 0.8, 0.1],
            [0.3, 0.6, 0.1],
            [0.1, 0.1, 0.8],
            [0.55, 0.05, 0.4],
        ]
    )
    r = report(gold, probs, LABELS)
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    a = r["per_class"]["a"]
    assert a["precision"] == pytest.approx(0.5) and a["recall"] == pytest.approx(0.5)
    b = r["per_class"]["b"]
    assert b["precision"] == pytest.approx(2 / 3) and b["f1"] == pytest.approx(0.8)
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert r["macro_f1"] == pytest.approx(macro_f1(gold, probs.argmax(1).tolist(), 3))
    cov = {c["threshold"]: c for c in r["coverage"]}
    assert cov[0.8]["coverage"] == pytest.approx(3 / 6)
    assert cov[0.8]["accuracy"] == pytest.approx(1.0)
    assert cov[0.9]["accuracy"] == pytest.approx(1.0)


def test_absent_class_counts_as_zero_f1() -> None:
    assert macro_f1([0, 0], [0, 0], 3) == pytest.approx(1 / 3)


def test_ece() -> None:
    conf = np.array([1.0, 1.0, 0.5, 0.5])
    correct = np.array([True, True, True, False])
    assert expected_calibration_error(conf, correct) == pytest.approx(0.0)
    assert expected_calibration_error(np.array([0.9, 0.9]), np.array([False, False])) == pytest.approx(0.9)


def test_softmax_rows_sum_to_one() -> None:
    p = softmax([[1000.0, 0.0], [0.0, 0.0]])
    assert np.allclose(p.sum(1), 1.0) and p[1, 0] == pytest.approx(0.5)


def test_empty_report() -> None:
    r = report([], np.zeros((0, 3)), LABELS)
    assert r["n"] == 0
    assert r["accuracy"] is None and r["macro_f1"] is None and r["ece"] is None  # n/a, not 0.0


def test_bootstrap_interval_brackets_the_estimate_and_narrows_with_more_rows() -> None:
    m = np.array([[40, 8, 2], [6, 30, 4], [1, 5, 14]])
    point = report(
        [g for g in range(3) for p in range(3) for _ in range(m[g, p])],
        np.eye(3)[[p for g in range(3) for p in range(3) for _ in range(m[g, p])]],
        LABELS,
    )
    ci = bootstrap_interval(m)
    assert ci == bootstrap_interval(m)  # a fixed seed: the same interval every time
    lo, hi = ci["macro_f1"]
    assert lo < point["macro_f1"] < hi and 0.05 < hi - lo < 0.3
    lo_a, hi_a = ci["accuracy"]
    assert lo_a < point["accuracy"] < hi_a
    wide = hi - lo
    lo10, hi10 = bootstrap_interval(m * 10)["macro_f1"]
    assert hi10 - lo10 < wide / 2  # ten times the rows: about a third as wide


def test_bootstrap_interval_of_a_perfect_or_empty_evaluation() -> None:
    assert bootstrap_interval(np.diag([5, 5, 5]))["macro_f1"] == (1.0, 1.0)
    assert bootstrap_interval(np.zeros((3, 3), dtype=int)) == {}
