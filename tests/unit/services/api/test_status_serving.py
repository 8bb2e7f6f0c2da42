"""``GET /v1/status`` tells the promoted version from the one the classifier serves: the
classifier reads the registry at start-up only, and the status listed the promoted
version as if served."""

from __future__ import annotations

from typing import Any

import pytest

from services.api.config import ApiSettings
from services.api.routes_ops import DEFAULT_CLASSIFIER_GROUP, classifier_view, with_serving


def _replica(group: str, replica: str, **versions: str) -> dict[str, Any]:
    models = [{"task": task, "version": version} for task, version in versions.items()]
    return {"group": group, "replica": replica, "models": models, "device": "cpu", "provider": "CPU", "variant": "int8"}


def _promoted(task: str, version: str) -> dict[str, Any]:
    return {"task": task, "promoted": True, "version": version}


def test_a_version_served_that_is_not_the_promoted_one_is_flagged() -> None:
    replicas = [
        _replica("tonewatch-classifier", "a:1", sentiment="s-v6", intent="i-v2"),
        _replica("tonewatch-classifier", "b:1", sentiment="s-v7", intent="i-v2"),
    ]
    sentiment = with_serving(_promoted("sentiment", "s-v7"), replicas)
    assert sentiment["version"] == "s-v7" and sentiment["serving"] == ["s-v6", "s-v7"]
    assert sentiment["serving_differs"] is True and "after a restart" in sentiment["serving_note"]
    intent = with_serving(_promoted("intent", "i-v2"), replicas)
    assert intent["serving"] == ["i-v2"] and intent["serving_differs"] is False and "serving_note" not in intent


def test_nothing_is_claimed_served_while_no_classifier_reports() -> None:
    info = with_serving(_promoted("sentiment", "s-v7"), [])
    assert info["serving"] == [] and info["serving_differs"] is None
    assert classifier_view([]) is None


def test_a_served_model_with_none_promoted_differs() -> None:
    info = with_serving(
        {"task": "intent", "promoted": False, "error": "no promoted"}, [_replica("g", "a:1", intent="i-v1")], "g"
    )
    assert info["serving"] == ["i-v1"] and info["serving_differs"] is True


def test_the_top_level_status_is_the_default_groups_and_every_replica_is_listed() -> None:
    replicas = [
        _replica("a-shadow", "x:1", sentiment="s-v8"),
        _replica("tonewatch-classifier", "y:1", sentiment="s-v7"),
    ]
    view = classifier_view(replicas)
    assert view is not None and view["group"] == "tonewatch-classifier" and view["replica"] == "y:1"
    assert view["replicas"] == replicas and view["device"] == "cpu"


def _pinned(replica: dict[str, Any], *tasks: str) -> dict[str, Any]:
    models = [{**m, "pinned": m["task"] in tasks} for m in replica["models"]]
    return {**replica, "models": models}


def _at(replica: dict[str, Any], published_at: float) -> dict[str, Any]:
    return {**replica, "published_at": published_at}


def test_a_shadow_group_on_another_version_is_listed_but_not_counted_as_serving() -> None:
    """A shadow group pinned to another version made ``serving_differs`` true for good, with
    a note that a restart would fix it."""
    replicas = [
        _pinned(_replica("shadow", "s:1", sentiment="s-v8"), "sentiment"),
        _replica("tonewatch-classifier", "m:1", sentiment="s-v7"),
    ]
    sentiment = with_serving(_promoted("sentiment", "s-v7"), replicas)
    assert sentiment["serving"] == ["s-v7"] and sentiment["serving_differs"] is False
    assert "serving_note" not in sentiment
    view = classifier_view(replicas)
    assert view is not None and view["replicas"] == replicas


def test_an_unpinned_shadow_group_is_not_counted_either() -> None:
    replicas = [_replica("shadow", "s:1", sentiment="s-v6"), _replica("tonewatch-classifier", "m:1", sentiment="s-v7")]
    assert with_serving(_promoted("sentiment", "s-v7"), replicas)["serving"] == ["s-v7"]
    assert with_serving(_promoted("sentiment", "s-v7"), replicas[:1])["serving_differs"] is None


def test_a_pinned_model_of_the_main_group_is_not_counted_its_other_models_are() -> None:
    replicas = [
        _pinned(_replica("tonewatch-classifier", "p:1", sentiment="s-v5", intent="i-v1"), "sentiment"),
        _replica("tonewatch-classifier", "m:1", sentiment="s-v7", intent="i-v2"),
    ]
    sentiment = with_serving(_promoted("sentiment", "s-v7"), replicas)
    assert sentiment["serving"] == ["s-v7"] and sentiment["serving_differs"] is False
    intent = with_serving(_promoted("intent", "i-v2"), replicas)
    assert intent["serving"] == ["i-v1", "i-v2"] and intent["serving_differs"] is True
    assert "after a restart" in intent["serving_note"]


def test_the_configured_main_group_is_the_one_counted() -> None:
    replicas = [_replica("tonewatch-classifier", "d:1", sentiment="s-v6"), _replica("prod", "m:1", sentiment="s-v7")]
    sentiment = with_serving(_promoted("sentiment", "s-v7"), replicas, "prod")
    assert sentiment["serving"] == ["s-v7"] and sentiment["serving_differs"] is False


def test_the_device_chip_is_a_main_group_replica_unpinned_first_then_the_newest() -> None:
    """With a custom group the chip fell back to the alphabetically first group: a shadow."""
    replicas = [
        _at(_replica("a-shadow", "s:1", sentiment="s-v8"), 300.0),
        _at(_pinned(_replica("prod", "p:1", sentiment="s-v5"), "sentiment"), 300.0),
        _at(_replica("prod", "m:1", sentiment="s-v7"), 100.0),
        _at(_replica("prod", "n:1", sentiment="s-v7"), 200.0),
    ]
    view = classifier_view(replicas, "prod")
    assert view is not None and (view["group"], view["replica"]) == ("prod", "n:1")
    view = classifier_view(replicas[:2], "prod")
    assert view is not None and (view["group"], view["replica"]) == ("prod", "p:1")


def test_the_main_group_is_the_apis_tw_classifier_group_id_else_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_CLASSIFIER_GROUP_ID", raising=False)
    assert ApiSettings().classifier_group_id == DEFAULT_CLASSIFIER_GROUP == "tonewatch-classifier"
    monkeypatch.setenv("TW_CLASSIFIER_GROUP_ID", "prod")
    assert ApiSettings().classifier_group_id == "prod"
