"""Tokenizer wrapper over the Rust ``tokenizers`` library.

Texts are batch-encoded with truncation and *without* padding: the batcher sorts
rows by length and pads each length bucket only to its own longest row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Encoded:
    """Token ids (and type ids, unless skipped) of one batch, unpadded, one array per text."""

    ids: list[IntArray]
    type_ids: list[IntArray] | None

    @property
    def lengths(self) -> IntArray:
        """Token count of every row."""
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


CHARS_PER_TOKEN = 100
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A surrogate code point: a Python ``str`` may hold one (JSON's ``"\\ud800"``), but it is no
character and the Rust tokenizer refuses the whole batch for it."""


def _readable(text: str) -> str:
    """``text`` with every surrogate code point made U+FFFD (as the classifier decodes one)."""
    if text.isascii() or LONE_SURROGATE.search(text) is None:
        return text
    return LONE_SURROGATE.sub("\ufffd", text)


class TextTokenizer:
    """``tokenizer.json`` loaded once; truncation to ``max_length``, no padding."""

    def __init__(self, tokenizer: Tokenizer, max_length: int) -> None:
        padding: dict[str, Any] | None = tokenizer.padding
        pad_id = padding.get("pad_id") if padding else None
        if pad_id is None:
            pad_id = _first_id(tokenizer, ("[PAD]", "<pad>"), 0)
        fallback = _first_id(tokenizer, ("[UNK]", "<unk>"), int(pad_id))
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=max_length)
        self._tok = tokenizer
        self.max_length = max_length
        self.pad_id = int(pad_id)
        self._empty = np.array([fallback], dtype=np.int64)

    @classmethod
    def from_file(cls, path: Path, max_length: int) -> TextTokenizer:
        """Load a ``tokenizer.json`` file."""
        return cls(Tokenizer.from_file(str(path)), max_length)

    @property
    def max_chars(self) -> int:
        """Characters of a text that are tokenized: the tokenizer works through a whole
        text before truncating (about 100 bytes of memory per character: a 1,000,000
        character event took 100 MB, a batch of them gigabytes), and every token of a
        word-piece vocabulary comes from at most 100 characters of a word, so the first
        ``max_length`` tokens never need more than ``CHARS_PER_TOKEN`` x ``max_length``
        characters (whitespace runs and words over 100 characters aside)."""
        return CHARS_PER_TOKEN * self.max_length

    def encode(self, texts: Sequence[str], type_ids: bool = True) -> Encoded:
        """Encode a batch (the Rust side runs it in parallel, off the GIL); each text is
        cut to :attr:`max_chars` first, and a lone surrogate in it read as U+FFFD (the tokenizer
        raised ``TypeError`` for the whole batch: one such text failed every text beside it).

        ``type_ids=False`` skips token type ids (graphs without that input)."""
        cap = self.max_chars
        batch = [_readable(t if len(t) <= cap else t[:cap]) for t in texts]
        encodings = self._encode_batch(batch)
        ids: list[IntArray] = []
        types: list[IntArray] = []
        for enc in encodings:
            row = np.asarray(enc.ids, dtype=np.int64)
            if row.size == 0:  # a tokenizer without special tokens, empty text
                ids.append(self._empty)
                if type_ids:
                    types.append(np.zeros(1, dtype=np.int64))
                continue
            ids.append(row)
            if type_ids:
                types.append(np.asarray(enc.type_ids, dtype=np.int64))
        return Encoded(ids, types if type_ids else None)

    def _encode_batch(self, texts: list[str]) -> list[Any]:
        # encode_batch_fast (tokenizers >= 0.21) skips character offsets we never use
        fast = getattr(self._tok, "encode_batch_fast", None)
        if fast is not None:
            return list(fast(texts))
        return list(self._tok.encode_batch(texts))


def _first_id(tokenizer: Tokenizer, tokens: Sequence[str], default: int) -> int:
    for token in tokens:
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return default
