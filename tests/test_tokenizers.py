"""Tokenizers: character-level and byte-level BPE (round trips, saving in the Hugging Face layout), and the
from-scratch BPE of the chapter checked against the `tokenizers` library on the same text."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmarch.training.bpe_scratch import bpe_decode, bpe_encode, learn_bpe, merge_pair, pair_counts, pretokenize
from llmarch.training.corpus import load_corpus
from llmarch.training.tokenizers import (
    EOS_TOKEN, BPETokenizer, CharTokenizer, Tokenizer, load_tokenizer, train_bpe_tokenizer, train_tokenizer,
)

tokenizers = pytest.importorskip("tokenizers")  # the hf extra

SAMPLES = {
    "chinese": "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。",
    "english": "The LORD is my shepherd; I shall not want. It's 1611!",
    "emoji": "🐱🐉 👩‍👩‍👧 ❤️ 🇨🇳",  # astral-plane characters, a ZWJ sequence, a variation selector, flags
    "mixed": "唐诗 and Psalms\t\r\n  three  spaces ",
    "empty": "",
}


@pytest.fixture(scope="module")
def train_text() -> str:
    return load_corpus("tang300")[:4000] + load_corpus("psalms")[:12000]


@pytest.fixture(scope="module")
def bpe(train_text) -> BPETokenizer:
    return train_bpe_tokenizer(train_text, vocab_size=400)


# ----------------------------------------------------------------------------- character level

def test_char_vocabulary_is_sorted_characters():
    text = "月光床前明月"
    tok = CharTokenizer.train(text)
    chars = sorted(set(text))  # the expected vocabulary, written out independently
    assert tok.vocab_size == len(chars) + 1 and tok.unk_token_id == 0 and tok.eos_token_id is None
    assert tok.encode(text) == [chars.index(c) + 1 for c in text]
    assert tok.encode("月x") == [chars.index("月") + 1, 0]
    assert tok.decode(tok.encode("月x")) == "月<unk>"
    assert isinstance(tok, Tokenizer)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_char_round_trip(name):
    tok = CharTokenizer.train("".join(SAMPLES.values()))
    ids = tok.encode(SAMPLES[name])
    assert len(ids) == len(SAMPLES[name])  # one id per code point
    assert tok.decode(ids) == SAMPLES[name]
    assert tok.decode(torch.tensor(ids, dtype=torch.long)) == SAMPLES[name]  # tensors decode too


@given(st.text())
def test_char_round_trip_any_text(text):
    tok = CharTokenizer.train(text + "a")
    assert tok.decode(tok.encode(text)) == text


def test_char_errors():
    tok = CharTokenizer.train("abc")
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\).*got 4"):
        tok.decode([1, 4])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 4\).*got -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="ids must be integers, got float"):
        tok.decode([1.0])
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match="chars must be single characters, got 'ab'"):
        CharTokenizer(["ab"])
    with pytest.raises(ValueError, match="chars must be distinct"):
        CharTokenizer(["a", "a"])


# ----------------------------------------------------------------------------- byte-level BPE

def test_bpe_vocabulary(bpe, train_text):
    assert bpe.vocab_size == 400 and bpe.eos_token_id == 0 and isinstance(bpe, Tokenizer)
    assert bpe.backend.id_to_token(0) == EOS_TOKEN
    assert len(bpe.encode(train_text)) < len(train_text.encode("utf-8"))  # merges do compress
    assert bpe.encode(EOS_TOKEN) == [0]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_bpe_round_trip(bpe, name):
    ids = bpe.encode(SAMPLES[name])
    assert bpe.decode(ids) == SAMPLES[name]
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert (ids == []) == (SAMPLES[name] == "")


@given(st.text())
def test_bpe_round_trip_any_text(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


@given(st.text(alphabet=st.characters(codec="utf-8", categories=["Lo", "So", "Zs", "Cc", "Po"])))
def test_bpe_round_trip_cjk_and_symbols(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_bpe_errors(bpe):
    with pytest.raises(ValueError, match="vocab_size must be an int >= 257"):
        train_bpe_tokenizer("abc", vocab_size=256)
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        train_bpe_tokenizer("", vocab_size=300)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 400\)"):
        bpe.decode([400])
    with pytest.raises(TypeError, match="text must be a str"):
        bpe.encode(b"bytes")
    with pytest.raises(ValueError, match="kind must be 'char' or 'bpe', got 'wordpiece'"):
        train_tokenizer("wordpiece", "abc")


def test_train_tokenizer_kinds(train_text):
    assert isinstance(train_tokenizer("char", train_text), CharTokenizer)
    tok = train_tokenizer("bpe", train_text, vocab_size=300)
    assert isinstance(tok, BPETokenizer) and tok.vocab_size == 300
    assert train_tokenizer("bpe", train_text).vocab_size == 1024  # the default
    assert train_tokenizer("bpe", train_text, 300).backend.to_str() == tok.backend.to_str()  # deterministic


# ----------------------------------------------------------------------------- saving and loading

@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_save_load_hugging_face_layout(tmp_path, kind, train_text):
    tok = train_tokenizer(kind, train_text + "🐱", vocab_size=300)
    tok.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["tokenizer.json", "tokenizer_config.json"]
    loaded = load_tokenizer(tmp_path / "model")
    assert type(loaded) is type(tok) and loaded.vocab_size == tok.vocab_size
    assert loaded.eos_token_id == tok.eos_token_id
    text = SAMPLES["chinese"] + SAMPLES["english"] + SAMPLES["emoji"]
    assert loaded.encode(text) == tok.encode(text)

    # the `tokenizers` library itself reads the file and agrees on a long text
    backend = tokenizers.Tokenizer.from_file(str(tmp_path / "model" / "tokenizer.json"))
    assert backend.encode(train_text).ids == tok.encode(train_text)
    assert backend.decode(tok.encode(text), skip_special_tokens=False) == tok.decode(tok.encode(text))


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_transformers_loads_the_folder(tmp_path, kind, train_text):
    transformers = pytest.importorskip("transformers")
    tok = train_tokenizer(kind, train_text + "🐱", vocab_size=300)
    tok.save(tmp_path)
    text = SAMPLES["chinese"] + "\n" + SAMPLES["english"] + SAMPLES["emoji"]
    for hf in (transformers.PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json")),
               transformers.AutoTokenizer.from_pretrained(str(tmp_path))):
        ids = hf.encode(text, add_special_tokens=False)
        assert ids == tok.encode(text)
        assert hf.decode(ids) == tok.decode(ids)
    assert transformers.AutoTokenizer.from_pretrained(str(tmp_path)).eos_token_id == tok.eos_token_id


def test_load_tokenizer_errors(tmp_path):
    with pytest.raises(ValueError, match="directory must contain tokenizer.json"):
        load_tokenizer(tmp_path)
    word_level = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    word_level.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="character-level WordLevel tokenizer"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram"}}), encoding="utf-8")
    with pytest.raises(ValueError, match="model type must be 'WordLevel' \\(char\\) or 'BPE', got 'Unigram'"):
        load_tokenizer(tmp_path)


# ----------------------------------------------------------------------------- scratch BPE vs `tokenizers`

def _gpt2_bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (encoder.py of openai/gpt-2), written out independently."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + n) for n, b in enumerate(others)}}


BYTE_TO_UNICODE = _gpt2_bytes_to_unicode()
UNICODE_TO_BYTE = {u: b for b, u in BYTE_TO_UNICODE.items()}


def _library_merges(bpe_tok: BPETokenizer) -> list[tuple[bytes, bytes]]:
    merges = json.loads(bpe_tok.backend.to_str())["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]  # older files: "a b"; newer: ["a", "b"]
    return [tuple(bytes(UNICODE_TO_BYTE[c] for c in part) for part in m) for m in merges]


def _scratch_merges_as_bytes(merges: dict[tuple[int, int], int]) -> list[tuple[bytes, bytes]]:
    vocab = {i: bytes([i]) for i in range(256)}
    out = []
    for (a, b), new_id in merges.items():
        out.append((vocab[a], vocab[b]))
        vocab[new_id] = vocab[a] + vocab[b]
    return out


@pytest.mark.parametrize("name, n_chars, num_merges", [("tang300", 3000, 60), ("psalms", 20000, 100)])
def test_scratch_bpe_agrees_with_tokenizers(name, n_chars, num_merges):
    text = load_corpus(name)[:n_chars]
    held_out = load_corpus(name)[n_chars: n_chars + 2000]

    # 1. the same pre-tokens: our `re` pattern and the library's ByteLevel pre-tokenizer (GPT-2's regex)
    library_pre = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    library_words = [bytes(UNICODE_TO_BYTE[c] for c in w).decode("utf-8")
                     for w, _ in library_pre.pre_tokenize_str(text)]
    assert pretokenize(text) == library_words

    library = train_bpe_tokenizer(text, vocab_size=257 + num_merges)
    library_merges = _library_merges(library)
    assert len(library_merges) == num_merges

    # 2. replay the library's merges with our counting: each one is a most frequent pair at its step
    #    (ties allowed); note the first step where several pairs share the top count
    words = Counter(tuple(w.encode("utf-8")) for w in pretokenize(text))
    token_id = {bytes([i]): i for i in range(256)}
    replayed: dict[tuple[int, int], int] = {}
    first_tie = None
    for step, (a, b) in enumerate(library_merges):
        counts = pair_counts(words)
        best = max(counts.values())
        pair = (token_id[a], token_id[b])
        assert counts[pair] == best, f"merge {step} {a + b!r}: count {counts[pair]}, most frequent {best}"
        if first_tie is None and sum(c == best for c in counts.values()) > 1:
            first_tie = step
        replayed[pair] = token_id[a + b] = 256 + step
        words = Counter({merge_pair(w, pair, 256 + step): f for w, f in words.items()})

    # 3. before the first tie the merges are forced: the scratch learner finds exactly the same ones
    assert first_tie is not None and first_tie >= 5
    scratch = learn_bpe(text, num_merges)
    assert _scratch_merges_as_bytes(scratch)[:first_tie] == library_merges[:first_tie]
    # (at a tie the two may pick different pairs -- both most frequent -- and differ from there on)

    # 4. with the same merges, scratch encoding gives the library's tokens, on training and unseen text
    token_str = {i: "".join(BYTE_TO_UNICODE[b] for b in token) for token, i in token_id.items()}
    for sample in (text, held_out, SAMPLES["emoji"] + SAMPLES["mixed"]):
        scratch_ids = bpe_encode(sample, replayed)
        assert [token_str[i] for i in scratch_ids] == [library.backend.id_to_token(i) for i in library.encode(sample)]
        assert bpe_decode(scratch_ids, replayed) == sample

    # 5. both trained for as many merges as have no tie: the same merges, so the same token counts
    library_no_tie = train_bpe_tokenizer(text, vocab_size=257 + first_tie)
    scratch_no_tie = learn_bpe(text, first_tie)
    assert _scratch_merges_as_bytes(scratch_no_tie) == _library_merges(library_no_tie)
    assert len(bpe_encode(held_out, scratch_no_tie)) == len(library_no_tie.encode(held_out))


@given(st.text(max_size=60))
def test_scratch_bpe_round_trip(text):
    merges = learn_bpe("the cat sat on the mat 床前明月光 🐱🐱 " * 3, 30)
    assert bpe_decode(bpe_encode(text, merges), merges) == text
