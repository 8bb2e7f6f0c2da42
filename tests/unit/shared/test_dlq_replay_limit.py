"""``dlq replay --limit N`` counted the dead letters it passed over: three of another class
before three of ``--error-class B`` and ``--limit 3`` replayed none (a plain replay likewise
behind permanent classes). The limit now counts the dead letters the replay takes (sent,
refused, or over the replay limit); those passed over are committed past, uncounted."""

from __future__ import annotations

from shared.kafka import dlq_ops
from tests.unit.shared.test_dlq_ops import SETTINGS, _Broker, broker  # noqa: F401 - the fixture


async def test_the_limit_counts_the_selected_class_not_those_passed_over(broker: _Broker) -> None:  # noqa: F811
    for i in range(3):
        broker.dead_letter(0, f"a-{i}".encode(), error_class="A")
    for i in range(4):
        broker.dead_letter(0, f"b-{i}".encode(), error_class="B")
    report = await dlq_ops.replay_report(SETTINGS, "news.raw", limit=3, select=dlq_ops.Selection(error_classes={"B"}))
    assert [v for v, _ in broker.source] == [b"b-0", b"b-1", b"b-2"] and report.replayed == 3
    assert broker.committed == {0: 6}  # up to the third taken: b-3 is the next replay's
    again = await dlq_ops.replay_report(SETTINGS, "news.raw", select=dlq_ops.Selection(error_classes={"B"}))
    assert again.replayed == 1 and broker.source[-1][0] == b"b-3"


async def test_a_plain_replay_limit_skips_permanent_classes_uncounted(broker: _Broker) -> None:  # noqa: F811
    broker.dead_letter(0, b"v-0", error_class="ValidationError")
    broker.dead_letter(0, b"v-1", error_class="ValidationError")
    broker.dead_letter(0, b"e-2")
    broker.dead_letter(0, b"e-3")
    broker.dead_letter(0, b"e-4")
    report = await dlq_ops.replay_report(SETTINGS, "news.raw", limit=2)
    assert [v for v, _ in broker.source] == [b"e-2", b"e-3"]
    assert report.replayed == 2 and report.left == {"ValidationError": 2} and broker.committed == {0: 4}


async def test_over_the_replay_limit_counts_as_taken(broker: _Broker) -> None:  # noqa: F811
    """Listed in the report (``--at`` sends it), so it is one of the N the user asked about."""
    broker.dead_letter(0, b"x", error_class="JSONDecodeError")
    broker.dead_letter(0, b"over", headers=[("tw.replays", b"3")])
    broker.dead_letter(0, b"fresh")
    report = await dlq_ops.replay_report(SETTINGS, "news.raw", limit=1)
    assert broker.source == [] and [f.place for f in report.over_limit] == ["news.raw.dlq[0]@1"]
    assert broker.committed == {0: 2}
