"""`tonewatch models predict` stopped with SIGTERM half-way leaves the previous --output
as it was and no temporary file.

Before: the output was opened in place, so a run killed after a few seconds left a
truncated file of valid-looking lines where the previous output was (3296 of 20000 lines
in the review), with no message. The input here is a named pipe the test writes to: the
run reads and writes four batches, then waits for more input, so the signal arrives
half-way whatever the machine's speed.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from shared.training.predict import BATCH

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[4]
PREVIOUS = '{"id": "previous", "label": "neutral"}\n'


def _open_writer(fifo: Path, proc: subprocess.Popen[bytes], deadline: float) -> int:
    """The pipe's write end, once the command has opened it for reading (it loads the model first)."""
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
        else:
            os.set_blocking(fd, True)
            return fd
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never opened its input"
        time.sleep(0.05)


def _written(out: Path) -> bool:
    """Whether some output lines reached the disk (a temporary file, or --output itself)."""
    temps = list(out.parent.glob(f".{out.name}.*.tmp"))
    return any(t.stat().st_size > 0 for t in temps) or out.read_text(encoding="utf-8") != PREVIOUS


def test_sigterm_half_way_keeps_the_previous_output(tiny_models: Path, tmp_path: Path) -> None:
    fifo, out = tmp_path / "in.fifo", tmp_path / "keep.jsonl"
    os.mkfifo(fifo)
    out.write_text(PREVIOUS, encoding="utf-8")
    cmd = [sys.executable, "-c", "from services.cli.models import app; app(prog_name='tonewatch models')"]
    cmd += ["--models-dir", str(tiny_models), "predict", "--task", "sentiment"]
    cmd += ["--input", str(fifo), "--output", str(out), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240  # a bound on waiting, not a measurement
    fd = -1
    try:
        fd = _open_writer(fifo, proc, deadline)
        lines = "".join(json.dumps({"id": i, "text": f"a fine result {i}"}) + "\n" for i in range(4 * BATCH))
        os.write(fd, lines.encode())
        while not _written(out):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no output was written"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if fd >= 0:
            os.close(fd)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert out.read_text(encoding="utf-8") == PREVIOUS, stderr.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fifo", "keep.jsonl"]
    assert proc.returncode == 128 + signal.SIGTERM, stderr.decode()  # SystemExit, the clean-up ran
    assert f"interrupted: {out} left as it was" in stderr.decode()
