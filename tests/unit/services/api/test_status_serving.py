"""``GET /v1/status`` tells the promoted version from the one the classifier serves: the
classifier reads the registry at start-up only, and the status listed the promoted
version as if served."""

from __future__ import annotations

from typing import Any

from services.api.routes_ops import classifier_view, with_serving


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
        {"task": "intent", "promoted": False, "error": "no promoted"}, [_replica("g", "a:1", intent="i-v1")]
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
