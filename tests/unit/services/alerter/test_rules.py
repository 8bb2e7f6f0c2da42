"""Rule specification validation."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.alerter.rules import RuleSpec


def spec(**over: Any) -> dict[str, Any]:
    return {
        "name": "r",
        "scope": {"entities": ["_all"]},
        "window_s": 300,
        "min_volume": 10,
        "abs_threshold": 0.5,
        "z_threshold": 2.0,
        "cooldown_s": 600,
        "resolve_after_s": 300,
        **over,
    }


@pytest.mark.parametrize("field", ["abs_threshold", "z_threshold"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_thresholds_refuse_infinity_and_nan(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        RuleSpec.model_validate(spec(**{field: value}))
    assert info.value.errors()[0]["loc"] == (field,)


def test_json_overflow_is_refused() -> None:
    with pytest.raises(ValidationError):
        RuleSpec.model_validate_json(
            '{"name": "r", "scope": {"entities": ["_all"]}, "window_s": 300, '
            '"min_volume": 1, "abs_threshold": 0.5, "z_threshold": 1e999, '
            '"cooldown_s": 0, "resolve_after_s": 0}'
        )
    assert RuleSpec.model_validate(spec(z_threshold=1e300)).z_threshold == 1e300  # large but finite is fine
