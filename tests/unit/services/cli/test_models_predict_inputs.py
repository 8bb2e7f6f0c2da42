"""`models predict` refuses an unusable --input/--output up front (exit 2, one message) and
reads/writes standard input/output for '-'.

Before: a missing or folder input, a folder output or one under a file failed only after
the model had loaded, with exit 1 and a bare OS error ("[Errno 21] Is a directory") or a
traceback; '-' was taken as a file name ('--output -' wrote a file named '-'); a bad
--variant/--device printed only pydantic's documentation link.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from tw_testing import registry_with_promoted
from typer.testing import CliRunner

from services.cli.models import app
from shared.labels import SENTIMENT_LABELS


def _predict(models: Path, *args: str, stdin: str | None = None) -> Result:
    base = ["--models-dir", str(models), "predict", "--task", "sentiment", "--device", "cpu"]
    return CliRunner().invoke(app, [*base, *args], input=stdin)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1, "text": "fine"}\n', encoding="utf-8")
    return path


def _refused(res: Result, option: str, words: str) -> None:
    assert res.exit_code == 2, (res.output, res.exception)
    assert option in res.output and words in " ".join(res.output.replace("│", " ").split()), res.output
    assert "Errno" not in res.output and "Traceback" not in res.output


def test_a_missing_input_is_a_usage_error(tiny_models: Path, tmp_path: Path) -> None:
    res = _predict(tiny_models, "--input", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "o.jsonl"))
    _refused(res, "--input", "does not exist")
    assert not (tmp_path / "o.jsonl").exists()


def test_a_folder_as_input_is_a_usage_error(tiny_models: Path, tmp_path: Path) -> None:
    res = _predict(tiny_models, "--input", str(tmp_path), "--output", str(tmp_path / "o.jsonl"))
    _refused(res, "--input", "is a folder")


def test_a_folder_as_output_is_a_usage_error(tiny_models: Path, tmp_path: Path, src: Path) -> None:
    (tmp_path / "out").mkdir()
    res = _predict(tiny_models, "--input", str(src), "--output", str(tmp_path / "out"))
    _refused(res, "--output", "is a folder")
    assert list((tmp_path / "out").iterdir()) == []


def test_an_output_under_a_file_is_a_usage_error(tiny_models: Path, tmp_path: Path, src: Path) -> None:
    res = _predict(tiny_models, "--input", str(src), "--output", str(src / "sub" / "o.jsonl"))
    _refused(res, "--output", "is not a folder")
    assert src.read_text(encoding="utf-8") == '{"id": 1, "text": "fine"}\n'


def test_missing_output_folders_are_still_created(tiny_models: Path, tmp_path: Path, src: Path) -> None:
    dst = tmp_path / "a" / "b" / "o.jsonl"
    res = _predict(tiny_models, "--input", str(src), "--output", str(dst))
    assert res.exit_code == 0, (res.output, res.exception)
    assert json.loads(dst.read_text(encoding="utf-8"))["id"] == 1


@pytest.mark.parametrize(("option", "value"), [("--variant", "int4"), ("--device", "gpu")])
def test_a_bad_variant_or_device_names_the_accepted_values(
    tiny_models: Path, tmp_path: Path, src: Path, option: str, value: str
) -> None:
    res = _predict(tiny_models, "--input", str(src), "--output", str(tmp_path / "o.jsonl"), option, value)
    _refused(res, option, "'auto'")
    assert "errors.pydantic.dev" not in res.output


def test_dash_reads_standard_input_and_writes_standard_output(
    tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where a file named '-' would land
    lines = '{"id": "a", "text": "très bien 😀"}\n{"id": "b", "text": "Привет"}\n'
    res = _predict(tiny_models, "--input", "-", "--output", "-", stdin=lines)
    assert res.exit_code == 0, (res.output, res.exception)
    recs = [json.loads(x) for x in res.stdout.splitlines()]
    assert [r["id"] for r in recs] == ["a", "b"]
    assert all(set(r["probs"]) == set(SENTIMENT_LABELS) for r in recs)
    assert not Path("-").exists()


def test_dash_output_with_a_file_input(tiny_models: Path, src: Path) -> None:
    res = _predict(tiny_models, "--input", str(src), "--output", "-")
    assert res.exit_code == 0, (res.output, res.exception)
    assert [json.loads(x)["id"] for x in res.stdout.splitlines()] == [1]
    assert "1 predicted, 0 errors" in res.stderr


@pytest.mark.parametrize(
    ("marker", "shown", "words"),
    [(b"gone\n", "gone", "not registered"), (b"\xff", "PROMOTED", "not UTF-8"), (b"", "PROMOTED", "is empty")],
)
def test_list_shows_a_promoted_marker_that_names_no_registered_version(
    tmp_path: Path, marker: bytes, shown: str, words: str
) -> None:
    """Before: `models list` showed no version starred and no reason (or a traceback for a
    marker that is not UTF-8), while `predict` failed with "no model sentiment/gone"."""
    reg = registry_with_promoted(tmp_path, marker)
    res = CliRunner().invoke(app, ["--models-dir", str(reg.root), "list", "--task", "sentiment"])
    assert res.exit_code == 0, (res.output, res.exception)
    lines = res.output.splitlines()
    assert lines[0].startswith("  sentiment v1 ")  # listed, not starred
    assert lines[1].startswith(f"* sentiment {shown} ") and "INVALID" in lines[1] and words in lines[1], lines


def test_standard_output_appended_to_the_input_is_refused(tiny_models: Path, src: Path) -> None:
    """`--output - >> in.jsonl` read its own records back as input for ever (the file grew
    to 982 MB in a minute); refused before the model loads, as `--output in.jsonl` is."""
    import subprocess
    import sys

    before = src.read_bytes()
    with src.open("ab") as out:
        run = subprocess.run(
            [
                *(sys.executable, "-m", "services", "models", "--models-dir", str(tiny_models), "predict"),
                *("--task", "sentiment", "--input", str(src), "--output", "-"),
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert run.returncode == 2, run.stderr
    assert "standard output is the input file" in run.stderr
    assert src.read_bytes() == before
