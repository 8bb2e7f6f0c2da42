"""``tonewatch ingest file`` peak memory: the streamed path (no pacing) next to the
path that holds the whole file (``--speedup``, which orders it by event time), in one
run, on the same generated JSONL file.

Each side is a separate ``tonewatch ingest file`` process measured with
``getrusage(RUSAGE_CHILDREN)``; ``--speedup`` is set so high that pacing adds no wait.
Needs the local stack (``tonewatch stack up``); produces to throw-away topics.
Last line: one JSON object. Usage: ``python bench/ingest_memory.py [--lines 200000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def _run(path: Path, extra: list[str]) -> dict[str, float]:
    env = dict(os.environ, TW_TOPICS__PREFIX=f"bench-ingest-{uuid.uuid4().hex[:8]}.")
    cmd = [sys.executable, "-m", "services", "ingest", "file", str(path), "--stream", "news", *extra]
    t0 = time.monotonic()
    # a fresh interpreter per side, so ru_maxrss of the children is this side's peak
    probe = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], env=env, capture_output=True, text=True, check=True)
    return {"peak_rss_mb": round(int(out.stdout.strip()) / 1024, 1), "seconds": round(time.monotonic() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=200_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "news.jsonl"
        with path.open("w") as fh:
            for i in range(args.lines):
                text = f"Shares in ACME slump after profit warning as investors fret over the outlook {i}"
                fh.write(json.dumps({"id": f"b{i}", "text": text, "event_time": "2026-01-01T00:00:00Z"}) + "\n")
        size_mb = round(path.stat().st_size / 1e6, 1)
        streamed = _run(path, [])
        whole = _run(path, ["--speedup", "1e12"])
    print(f"{args.lines:,} lines, {size_mb} MB of JSONL")
    print(f"{'':36} {'peak RSS MB':>12} {'seconds':>8}")
    for label, r in (("streamed (no pacing, or --rate)", streamed), ("whole file in memory (--speedup)", whole)):
        print(f"{label:36} {r['peak_rss_mb']:>12} {r['seconds']:>8}")
    print(json.dumps({"lines": args.lines, "file_mb": size_mb, "streamed": streamed, "whole_file": whole}))


if __name__ == "__main__":
    main()
