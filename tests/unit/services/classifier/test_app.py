"""The classifier keeps the cycle collector off its hot path, and its consumer
group notices a dead replica soon."""

from __future__ import annotations

import gc
from typing import cast

from services.classifier.app import RunState, build_app, tune_gc
from services.classifier.classify import Classify
from services.classifier.config import ClassifierSettings


def test_tune_gc_freezes_startup_objects_and_collects_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold()[0] == 50_000
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_a_dead_replica_loses_its_partitions_after_the_configured_session_timeout() -> None:
    settings = ClassifierSettings(session_timeout_s=12)
    app = build_app(settings, cast(Classify, None), RunState())
    assert app.conf.broker_session_timeout == 12  # faust's own default is 60 s
    assert ClassifierSettings().session_timeout_s == 15
