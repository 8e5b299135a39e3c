"""Loading is safe and strict: code-running pickles, damaged files, wrong configs and Hub ids are
refused with errors that name the file, key or field (expected vs received)."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import shutil

import pytest
import torch

import llmarch
from llmarch.interop.checkpoint import read_weights, write_weights

transformers = pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

VOCAB = 128


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=VOCAB, n_positions=16)).eval()
    path = tmp_path_factory.mktemp("gpt2")
    hf.save_pretrained(path)
    return path


@pytest.fixture()
def folder(gpt2_folder, tmp_path):
    """A fresh copy of the checkpoint folder, free to damage."""
    return shutil.copytree(gpt2_folder, tmp_path / "ckpt")


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --- a pickle that would run code -------------------------------------------------------------

class Payload:
    """Unpickling this calls ``exec``: it writes a marker file and sets an environment variable."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        code = (f"open({self.marker!r}, 'w').write('pwned'); "
                "import os; os.environ['LLMARCH_PWNED'] = '1'")
        return exec, (code,)


@pytest.mark.parametrize("fmt", ["zip", "legacy", "plain"])
def test_a_code_running_pickle_is_refused_and_nothing_runs(folder, tmp_path, monkeypatch, fmt):
    monkeypatch.setenv("LLMARCH_PWNED", "")  # so that teardown removes what the control below sets
    monkeypatch.delenv("LLMARCH_PWNED")
    marker = tmp_path / "marker"
    state = dict(read_weights(folder), evil=Payload(marker))
    (folder / "model.safetensors").unlink()
    bin_path = folder / "pytorch_model.bin"
    if fmt == "plain":  # a bare pickle stream (protocol 4), not torch.save's format
        bin_path.write_bytes(pickle.dumps(state, protocol=4))
    else:  # torch.save's zip format, or its pre-1.6 format
        torch.save(state, bin_path, _use_new_zipfile_serialization=fmt == "zip")
    with pytest.raises(ValueError) as info:
        llmarch.from_pretrained(folder)
    message = str(info.value)
    assert str(bin_path) in message and "Use the checkpoint's model.safetensors instead" in message
    if fmt == "plain":  # refused at the first opcode torch's weights-only unpickler does not know
        assert "is not a weights-only PyTorch checkpoint" in message and "Unsupported operand" in message
    else:
        assert "is a pickle that would call exec when loaded, i.e. run code" in message
    assert not marker.exists() and "LLMARCH_PWNED" not in os.environ  # nothing ran
    # Control: the payload is real -- an unrestricted unpickle runs it.
    with open(bin_path, "rb") as f:
        pickle.load(f) if fmt == "plain" else torch.load(f, weights_only=False)
    assert marker.read_text() == "pwned" and os.environ["LLMARCH_PWNED"] == "1"


def test_a_bin_that_is_not_a_state_dict_is_refused(folder):
    (folder / "model.safetensors").unlink()
    torch.save([torch.zeros(2)], folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match=r"pytorch_model.bin must hold a state dict \(a dict of name -> tensor\), "
                                         r"got list"):
        llmarch.from_pretrained(folder)
    torch.save({"wte.weight": torch.zeros(2), "step": 3}, folder / "pytorch_model.bin")
    with pytest.raises(ValueError, match="must map names to tensors, got key 'step' holding int"):
        llmarch.from_pretrained(folder)


# --- damaged files ------------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "header", "empty"])
def test_truncated_or_corrupted_safetensors(folder, damage):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) - 100], "header": b"\xff" * 8 + data[8:],
                      "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"model.safetensors is not a valid safetensors file \(truncated or "
                                         r"corrupted: Error while deserializing header"):
        llmarch.from_pretrained(folder)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_truncated_or_corrupted_bin(folder, damage):
    state = read_weights(folder)
    (folder / "model.safetensors").unlink()
    path = folder / "pytorch_model.bin"
    torch.save(state, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x80\x02not a checkpoint")
    expected = ("is not a valid PyTorch checkpoint \\(truncated or corrupted" if damage == "truncated"
                else "is not a weights-only PyTorch checkpoint")
    with pytest.raises(ValueError, match=expected) as info:
        llmarch.from_pretrained(folder)
    assert str(path) in str(info.value)


def test_sharded_safetensors_are_read_and_checked(folder, gpt2_folder):
    state = read_weights(folder)
    keys = sorted(state)
    halves = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    from safetensors.torch import save_file

    for name, part in halves.items():
        save_file({k: state[k] for k in part}, str(folder / name))
    index = {"metadata": {}, "weight_map": {k: name for name, part in halves.items() for k in part}}
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert same_weights(llmarch.from_pretrained(folder), llmarch.from_pretrained(gpt2_folder))
    # the index must list exactly what each shard holds
    moved = halves["model-00002-of-00002.safetensors"][0]
    index["weight_map"][moved] = "model-00001-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=rf"model-00001-of-00002.safetensors must hold the keys the index gives it: "
                                         rf"missing \['{moved}'\]"):
        llmarch.from_pretrained(folder)
    # and may not point outside the folder
    index["weight_map"][moved] = "../elsewhere.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="shard file names must be plain names inside the folder, got "
                                         "'../elsewhere.safetensors'"):
        llmarch.from_pretrained(folder)


# --- config.json --------------------------------------------------------------------------------

def edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("field, value, error, message", [
    ("n_layer", "1", TypeError, r"config.json n_layer must be an int, got str \('1'\)"),
    ("n_embd", 32.0, TypeError, r"config.json n_embd must be an int, got float \(32.0\)"),
    ("tie_word_embeddings", "yes", TypeError, r"config.json tie_word_embeddings must be true or false, got str"),
    ("layer_norm_epsilon", [1e-5], TypeError, "config.json layer_norm_epsilon must be a number, got list"),
    ("activation_function", "mish", ValueError, "config.json activation_function must be one of 'gelu_new', "),
    ("n_head", 3, ValueError, "config.json gives an invalid model: d_model must be divisible by num_heads, got "
                              "d_model=32 and num_heads=3"),
    ("model_type", "mistral", ValueError, "config.json model_type must be one of 'gpt2', 'openai-gpt', 'bert', "
                                          "'t5', 'llama', .*got 'mistral'"),
    ("model_type", None, TypeError, r"config.json model_type must be a string, got NoneType \(None\)"),
])
def test_config_json_with_wrong_types_or_values(folder, field, value, error, message):
    edit_config(folder, **{field: value})
    with pytest.raises(error, match=message) as info:
        llmarch.from_pretrained(folder)
    assert str(info.value).startswith(str(folder))  # which checkpoint


def test_config_json_missing_model_type_broken_or_not_an_object(folder):
    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="config.json must set model_type .a string.; it is missing"):
        llmarch.from_pretrained(folder)
    (folder / "config.json").write_text('{"model_type": "gpt2",')
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        llmarch.from_pretrained(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json must hold a JSON object, got list"):
        llmarch.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="no config.json in"):
        llmarch.from_pretrained(folder)


def test_a_vocabulary_that_does_not_match_the_weights(folder):
    edit_config(folder, vocab_size=100)
    with pytest.raises(ValueError, match=r"vocabulary mismatch in .*: config.json vocab_size is 100, but "
                                         r"model.safetensors stores 'transformer.wte.weight' with 128 rows "
                                         r"\(shape \(128, 32\)\)"):
        llmarch.from_pretrained(folder)


# --- where the checkpoint comes from ------------------------------------------------------------

@pytest.mark.parametrize("hub_id, local", [("gpt2", "./gpt2"), ("openai-community/gpt2", "./gpt2"),
                                           ("google-t5/t5-small", "./t5-small")])
def test_a_hub_id_says_only_local_folders_and_how_to_get_one(tmp_path, monkeypatch, hub_id, local):
    monkeypatch.chdir(tmp_path)  # no such folder here
    with pytest.raises(FileNotFoundError) as info:
        llmarch.from_pretrained(hub_id)
    message = str(info.value)
    assert f"no folder {hub_id!r}: it looks like a Hugging Face Hub id" in message
    assert "llmarch loads only local checkpoint folders (it never downloads)" in message
    assert f"`huggingface-cli download {hub_id} --local-dir {local}`" in message
    assert f".save_pretrained({local!r})" in message and f"from_pretrained({local!r})" in message


def test_other_bad_paths_and_arguments(folder, tmp_path):
    with pytest.raises(FileNotFoundError, match="path must be an existing checkpoint folder, got '/no/such/dir'"):
        llmarch.from_pretrained("/no/such/dir")
    with pytest.raises(ValueError, match="path must be a checkpoint folder .config.json plus weights., got the file"):
        llmarch.from_pretrained(folder / "model.safetensors")
    with pytest.raises(TypeError, match="path must be a str or os.PathLike .a local checkpoint folder., got dict"):
        llmarch.from_pretrained({"model_type": "gpt2"})
    with pytest.raises(TypeError, match="dtype must be a floating torch.dtype such as torch.bfloat16, got torch.int8"):
        llmarch.from_pretrained(folder, dtype=torch.int8)
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no weights in .*: expected one of model.safetensors, "
                                                "model.safetensors.index.json, pytorch_model.bin"):
        llmarch.from_pretrained(folder)
    model = llmarch.create_model("gpt2", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50)
    with pytest.raises(ValueError, match="save_pretrained model_type must be one of .*, got 'gpt-2'"):
        llmarch.save_pretrained(model, tmp_path / "out", model_type="gpt-2")
    bert = llmarch.create_model("bert-base", num_layers=1, d_model=32, num_heads=2, d_ff=64, vocab_size=50)
    with pytest.raises(ValueError, match="config.architecture must be 'decoder_only', got 'encoder_only'"):
        llmarch.save_pretrained(bert, tmp_path / "out", model_type="gpt2")


# --- GPT-2 details: tied head copies and old causal-mask buffers --------------------------------

def test_gpt2_tied_head_copy_must_equal_the_embeddings(folder, gpt2_folder):
    state = read_weights(folder)
    state["lm_head.weight"] = state["transformer.wte.weight"].clone()
    write_weights(state, folder)
    assert same_weights(llmarch.from_pretrained(folder), llmarch.from_pretrained(gpt2_folder))
    state["lm_head.weight"][3, 4] += 1.0
    write_weights(state, folder)
    with pytest.raises(ValueError, match="'lm_head.weight' must equal 'embeddings.tokens.weight' .they are tied., "
                                         "but it differs: largest difference 1"):
        llmarch.from_pretrained(folder)


def test_gpt2_old_causal_mask_buffers_are_checked_then_dropped(folder, gpt2_folder):
    """Older GPT-2 checkpoints (the Hub's ``gpt2`` among them) store ``h.N.attn.bias`` and
    ``h.N.attn.masked_bias``; Hugging Face ignores them, and so do we after checking them."""
    state = read_weights(folder)
    state["transformer.h.0.attn.bias"] = torch.tril(torch.ones(16, 16, dtype=torch.uint8)).view(1, 1, 16, 16)
    state["transformer.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    write_weights(state, folder)
    assert same_weights(llmarch.from_pretrained(folder), llmarch.from_pretrained(gpt2_folder))
    state["transformer.h.0.attn.bias"] = torch.ones(1, 1, 16, 16)  # not causal: not the buffer
    write_weights(state, folder)
    with pytest.raises(ValueError, match=r"checkpoint key 'h.0.attn.bias' must be GPT-2's causal-mask buffer"):
        llmarch.from_pretrained(folder)


@pytest.mark.parametrize("family, hf_config, error, message", [
    ("bert", {"vocab_size": 99, "hidden_size": "32", "num_hidden_layers": 2, "num_attention_heads": 4,
              "intermediate_size": 37}, TypeError, r"config.json hidden_size must be an int, got str \('32'\)"),
    ("bert", {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}, ValueError,
     r"config.json must set intermediate_size \(an int\); it is missing"),
    ("t5", {"vocab_size": 64, "d_model": 32, "d_ff": 64, "num_layers": 2, "num_heads": 4, "dropout_rate": "0.1"},
     TypeError, r"config.json dropout_rate must be a number, got str \('0.1'\)"),
    ("t5", {"vocab_size": 64, "d_model": 32, "d_ff": 64, "num_layers": 2, "num_heads": 4,
            "feed_forward_proj": "gated-mish"}, ValueError, "config.json feed_forward_proj must be one of 'relu', "),
    ("t5", {"vocab_size": 64, "d_model": 32, "d_ff": 64, "num_layers": 2, "num_heads": 4,
            "tie_word_embeddings": 0}, TypeError, r"config.json tie_word_embeddings must be true or false, got int"),
])
def test_bert_and_t5_config_fields_are_typed(family, hf_config, error, message):
    converter = importlib.import_module(f"llmarch.interop.{family}")
    with pytest.raises(error, match=message):
        converter.config_from_hf(hf_config)
