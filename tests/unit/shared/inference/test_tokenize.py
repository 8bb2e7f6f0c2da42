"""TextTokenizer on a small in-memory WordLevel tokenizer (no model files)."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer, models, pre_tokenizers, processors

from shared.inference.tokenize import TextTokenizer

VOCAB = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "shares": 4, "surge": 5, "pound": 6, "falls": 7}


def make(post: bool = True, padding: bool = True) -> Tokenizer:
    tok = Tokenizer(models.WordLevel(VOCAB, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if post:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
        )
    if padding:  # the registry's tokenizer.json ships with padding enabled
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
    return tok


def test_no_padding_and_truncation(tmp_path: Path) -> None:
    make().save(str(tmp_path / "tokenizer.json"))
    tt = TextTokenizer.from_file(tmp_path / "tokenizer.json", max_length=4)
    enc = tt.encode(["shares surge", "pound falls shares surge pound", ""])
    assert [x.tolist() for x in enc.ids] == [[2, 4, 5, 3], [2, 6, 7, 3], [2, 3]]
    assert enc.lengths.tolist() == [4, 4, 2]
    assert enc.type_ids is not None
    assert [len(t) for t in enc.type_ids] == [4, 4, 2]
    assert tt.pad_id == 0
    assert tt.max_length == 4


def test_unknown_and_non_latin_map_to_unk() -> None:
    tt = TextTokenizer(make(), max_length=16)
    assert tt.encode(["英国央行 🙂"]).ids[0].tolist() == [2, 1, 1, 3]


def test_empty_encoding_gets_one_token() -> None:
    tt = TextTokenizer(make(post=False, padding=False), max_length=8)
    enc = tt.encode(["", "shares"])
    assert [x.tolist() for x in enc.ids] == [[1], [4]]  # [UNK] stands in for nothing
    assert enc.type_ids is not None and enc.type_ids[0].tolist() == [0]


def test_type_ids_can_be_skipped() -> None:
    tt = TextTokenizer(make(), max_length=8)
    enc = tt.encode(["shares"], type_ids=False)
    assert enc.type_ids is None
    assert enc.ids[0].tolist() == [2, 4, 3]


def test_a_huge_text_is_cut_before_tokenizing_with_the_same_tokens() -> None:
    tt = TextTokenizer(make(), max_length=8)
    huge = "shares surge pound falls " * 400_000  # 10,000,000 characters
    cut = []

    class Recording:  # what the Rust tokenizer is handed
        def __init__(self, inner: Tokenizer) -> None:
            self.inner = inner

        def encode_batch_fast(self, texts: list[str]) -> list[object]:
            cut.extend(len(t) for t in texts)
            return list(self.inner.encode_batch_fast(texts))

    tt._tok = Recording(tt._tok)  # type: ignore[assignment]
    enc = tt.encode([huge, "shares surge"])
    assert cut == [tt.max_chars, len("shares surge")] and tt.max_chars == 800
    assert enc.ids[0].tolist() == [2, 4, 5, 6, 7, 4, 5, 3]  # the first tokens, as from the whole text
