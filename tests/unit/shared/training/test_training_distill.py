"""Knowledge-distillation loss (pure tensor maths) and its settings."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from shared.training.train import TrainConfig, distill_loss  # noqa: E402


def _ce() -> torch.nn.Module:
    return torch.nn.CrossEntropyLoss()


def test_alpha_one_is_plain_cross_entropy_on_labelled_rows() -> None:
    student = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
    teacher = torch.tensor([[0.0, 5.0, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    hard = torch.tensor([0, -1, 2])  # the middle row is unlabelled
    labelled = hard >= 0
    loss = distill_loss(student, teacher, hard, labelled, _ce(), alpha=1.0, temperature=2.0)
    expected = _ce()(student[labelled], hard[labelled])
    assert torch.allclose(loss, expected)


def test_student_equal_to_teacher_has_no_soft_loss() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [3.0, 0.0, -3.0]])
    hard = torch.tensor([-1, -1])
    loss = distill_loss(logits, logits.clone(), hard, hard >= 0, _ce(), alpha=0.5, temperature=2.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-6)


def test_soft_loss_pulls_the_student_towards_the_teacher() -> None:
    student = torch.zeros((1, 3), requires_grad=True)
    teacher = torch.tensor([[0.0, 0.0, 4.0]])
    hard = torch.tensor([-1])
    loss = distill_loss(student, teacher, hard, hard >= 0, _ce(), alpha=0.5, temperature=2.0)
    assert float(loss.detach()) > 0
    loss.backward()
    assert student.grad is not None
    assert float(student.grad[0, 2]) < 0 < float(student.grad[0, 0])  # gradient descent raises logit 2


def test_temperature_squared_keeps_the_soft_gradient_scale() -> None:
    teacher = torch.tensor([[0.0, 0.0, 4.0]])
    hard = torch.tensor([-1])
    grads = []
    for t in (1.0, 4.0):
        student = torch.zeros((1, 3), requires_grad=True)
        distill_loss(student, teacher, hard, hard >= 0, _ce(), alpha=0.0, temperature=t).backward()
        assert student.grad is not None
        grads.append(float(student.grad.abs().sum()))
    assert 0.2 < grads[1] / grads[0] < 5  # without T^2 it would shrink about 16-fold


@pytest.mark.parametrize(("alpha", "temperature"), [(-0.1, 2.0), (1.5, 2.0), (0.5, 0.0)])
def test_bad_distillation_settings_are_refused(alpha: float, temperature: float) -> None:
    with pytest.raises(ValueError, match="distill_"):
        TrainConfig(task="sentiment", distill_alpha=alpha, distill_temperature=temperature)
