from __future__ import annotations

import pytest

from services.aggregator.config import AggregatorSettings
from services.classifier.config import ClassifierSettings
from services.router.config import RouterSettings
from services.settings_doc import reference


def test_service_fields_have_their_own_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_AGGREGATOR_GROUP_ID", "agg-x")
    monkeypatch.setenv("TW_AGGREGATOR_MAX_BATCH", "17")
    monkeypatch.setenv("TW_KAFKA__BOOTSTRAP_SERVERS", "kafka:9092")
    agg, router = AggregatorSettings(), RouterSettings()
    assert (agg.group_id, agg.max_batch) == ("agg-x", 17)
    assert (router.group_id, router.max_batch) == ("tonewatch-router", 500)  # untouched
    assert agg.kafka.bootstrap_servers == router.kafka.bootstrap_servers == "kafka:9092"


def test_nested_inference_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TW_INFERENCE__DEVICE", "cpu")
    monkeypatch.setenv("TW_INFERENCE__MAX_BATCH", "32")
    s = ClassifierSettings()
    assert (s.inference.device, s.inference.max_batch) == ("cpu", 32)


def test_reference_lists_every_variable_once_with_a_description() -> None:
    rows = reference()
    names = [r["env"] for r in rows]
    assert len(names) == len(set(names))
    for expected in (
        "TW_KAFKA__BOOTSTRAP_SERVERS",
        "TW_POSTGRES__URL",
        "TW_AGGREGATOR_GROUP_ID",
        "TW_INFERENCE__DEVICE",
        "TW_ALERTER_WEBHOOK_SECRET",
        "TW_API_PORT",
    ):
        assert expected in names
    assert all(r["description"] for r in rows if r["env"] != "TW_TOPICS__PREFIX")
    assert next(r for r in rows if r["env"] == "TW_POSTGRES__URL")["default"] == "(secret)"


def test_a_variable_two_services_read_is_one_row_naming_both() -> None:
    """The API reads the classifier's group to tell serving replicas from shadows: the
    reference listed TW_CLASSIFIER_GROUP_ID twice."""
    row = next(r for r in reference() if r["env"] == "TW_CLASSIFIER_GROUP_ID")
    assert row["service"] == "classifier, api"
    assert "Consumer group" in row["description"] and "api: The classifier's main consumer group" in row["description"]
