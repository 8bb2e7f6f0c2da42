"""Peak memory of tokenizing long texts with the shipped sentiment tokenizer: whole texts
(the peer, the code before) next to texts cut to ``TextTokenizer.max_chars`` (what the
classifier and ``models predict`` do now), each side in its own process, in one run.
The token ids are checked equal.

Usage: ``python bench/tokenize_memory.py [--chars 1000000] [--texts 8]``. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def side(cut: bool, chars: int, texts: int) -> None:
    from shared.inference.registry import Registry
    from shared.inference.tokenize import TextTokenizer

    entry = Registry(REPO / "models").promoted("sentiment")
    tok = TextTokenizer.from_file(entry.tokenizer_path, 64)
    batch = [("Shares slide as profit warning hits the market. " * (chars // 48 + 1))[:chars]] * texts
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if cut:
        ids = tok.encode(batch).ids
    else:
        # the peer: the whole texts to the Rust tokenizer, truncated after encoding
        ids = [__import__("numpy").asarray(e.ids) for e in tok._encode_batch(batch)]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"growth_mb": (after - before) / 1024, "peak_mb": after / 1024, "first": ids[0].tolist()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chars", type=int, default=1_000_000)
    parser.add_argument("--texts", type=int, default=8)
    parser.add_argument("--side", choices=["whole", "cut"])
    args = parser.parse_args()
    if args.side:
        side(args.side == "cut", args.chars, args.texts)
        return
    out = {}
    for name in ("whole", "cut"):
        cmd = [sys.executable, __file__, "--side", name, "--chars", str(args.chars), "--texts", str(args.texts)]
        out[name] = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
    assert out["whole"]["first"] == out["cut"]["first"]
    print(f"{args.texts} texts of {args.chars:,} characters, shipped sentiment tokenizer (max_length 64)")
    for name in ("whole", "cut"):
        peak, growth = out[name]["peak_mb"], out[name]["growth_mb"]
        print(f"{name:>6}: peak RSS {peak:8.1f} MB, growth while tokenizing {growth:8.1f} MB")
    print(json.dumps({k: {m: v[m] for m in ("peak_mb", "growth_mb")} for k, v in out.items()}))


if __name__ == "__main__":
    main()
