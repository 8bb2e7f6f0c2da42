"""A lone surrogate (a Python ``str`` may hold one: JSON's ``"\\ud800"``, ``surrogateescape``
decoding) is no character: the Rust tokenizer refused the whole batch with a ``TypeError``,
so every text batched beside it failed too (a MicroBatcher's callers, a ``predict``). It is
read as U+FFFD, as the classifier's decoding already makes it."""

from __future__ import annotations

import re

from tokenizers import Tokenizer, models, pre_tokenizers, processors

from shared.inference.tokenize import TextTokenizer

VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "shares": 4, "surge": 5, "pound": 6, "falls": 7}


def make() -> Tokenizer:
    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok


def test_a_lone_surrogate_is_read_as_the_replacement_character_and_its_batch_goes_on() -> None:
    tt = TextTokenizer(make(), max_length=16)
    texts = ["shares surge", "pound \ud800 falls", "\udfff", "shares \udc80\ud83d surge", "pound falls"]
    replaced = [re.sub("[\ud800-\udfff]", "\ufffd", t) for t in texts]
    enc = tt.encode(texts)
    assert [x.tolist() for x in enc.ids] == [x.tolist() for x in tt.encode(replaced).ids]
    assert [x.tolist() for x in enc.ids] == [[2, 4, 5, 3], [2, 6, 1, 7, 3], [2, 1, 3], [2, 4, 1, 5, 3], [2, 6, 7, 3]]


def test_a_surrogate_cut_at_the_character_cap_is_replaced_too() -> None:
    tt = TextTokenizer(make(), max_length=2)  # max_chars 200
    text = "shares " * 28 + "\ud800" + "surge " * 100  # the surrogate falls inside the first 200 characters
    assert len(tt.encode([text]).ids[0]) == 2
