"""``prepare_data(..., tokenizer_text=...)`` and ``train --tokenizer-text``: which text the tokenizer learns from."""

from __future__ import annotations

import json

import pytest

from llmarch.cli import main
from llmarch.training.corpus import load_corpus, split_text
from llmarch.training.run_setup import prepare_data
from llmarch.training.tokenizers import load_tokenizer

# 10 poems: with val_fraction 0.2, poems 4 and 9 (counted from 0) are validation
POEMS = ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡", "孤舟蓑笠翁",
         "春眠不觉晓", "处处闻啼鸟", "夜来风雨声", "花落知多少", "独钓寒江雪"]
TEXT = "\n\n".join(POEMS) + "\n"


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "poems.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_char_vocabulary_from_the_training_split_leaves_validation_only_characters_unknown(corpus):
    tokenizer, train_ids, val_ids = prepare_data(str(corpus), val_fraction=0.2)
    train_text, val_text = "\n\n".join(POEMS[:4] + POEMS[5:9]) + "\n", POEMS[4] + "\n\n" + POEMS[9] + "\n"
    unseen = [c for c in val_text if c not in set(train_text)]
    assert unseen == list("孤舟蓑笠翁独钓寒江雪")  # no character of poems 4 and 9 occurs in the others
    assert int((val_ids == tokenizer.unk_token_id).sum()) == len(unseen) > 0
    assert tokenizer.vocab_size == len(set(train_text)) + 1
    assert tokenizer.decode(train_ids) == train_text


def test_char_vocabulary_from_all_text_has_no_unknown_and_the_same_training_ids_text(corpus):
    tokenizer, train_ids, val_ids = prepare_data(str(corpus), val_fraction=0.2, tokenizer_text="all")
    train_text, val_text = split_text(TEXT, 0.2)
    assert tokenizer.vocab_size == len(set(TEXT)) + 1
    assert int((val_ids == tokenizer.unk_token_id).sum()) == 0
    assert tokenizer.decode(val_ids) == val_text and tokenizer.decode(train_ids) == train_text


def test_tang300_validation_has_unknown_characters_only_with_a_training_split_vocabulary():
    text = load_corpus("tang300")
    train_text, val_text = split_text(text)
    unseen = sum(c not in set(train_text) for c in val_text)
    tokenizer, _, val_ids = prepare_data("tang300")
    assert int((val_ids == tokenizer.unk_token_id).sum()) == unseen > 0
    tokenizer, _, val_ids = prepare_data("tang300", tokenizer_text="all")
    assert int((val_ids == tokenizer.unk_token_id).sum()) == 0 and tokenizer.vocab_size == len(set(text)) + 1


def test_bad_tokenizer_text_is_refused(corpus):
    with pytest.raises(ValueError, match="tokenizer_text must be 'train' or 'all', got 'val'"):
        prepare_data(str(corpus), tokenizer_text="val")


def test_train_command_passes_tokenizer_text_and_records_it(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "gpt2", "--set", "num_layers=1", "--set", "d_model=16", "--set", "num_heads=2",
            "--set", "d_ff=32", "--data", str(corpus), "--val-fraction", "0.2", "--tokenizer-text", "all",
            "--seq-len", "4", "--batch-size", "2", "--steps", "1", "--warmup-steps", "0", "--eval-batches", "1",
            "--device", "cpu", "--progress", "lines", "--no-plot", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert "雪" in load_tokenizer(out).stoi  # a validation-only character has an id
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["options"]["tokenizer_text"] == "all"
