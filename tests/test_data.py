"""Token streams: encoding a corpus, reproducible random training windows (resume, data-parallel ranks),
sequential evaluation windows."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmarch.training.corpus import load_corpus, split_text
from llmarch.training.data import RandomWindows, encode_corpus, sequential_windows
from llmarch.training.tokenizers import CharTokenizer


def test_encode_corpus():
    train, val = split_text(load_corpus("tang300"))
    tok = CharTokenizer.train(train)
    ids = encode_corpus(tok, val)
    assert ids.dtype == torch.long and ids.shape == (len(val),)
    assert tok.decode(ids) == "".join(c if c in tok.stoi else "<unk>" for c in val)
    with pytest.raises(ValueError, match="text must be a non-empty str"):
        encode_corpus(tok, "")


def test_random_windows_are_slices_of_the_stream():
    ids = torch.arange(1000) * 7  # distinct values: a window's position can be read off its first token
    windows = RandomWindows(ids, seq_len=16, batch_size=8, seed=3)
    for step in range(5):
        batch = windows.batch_at(step)
        assert batch.shape == (8, 17) and batch.dtype == torch.long
        for row in batch:
            start = int(row[0]) // 7
            assert torch.equal(row, ids[start: start + 17])


def test_random_windows_reproducible_and_resumable():
    ids = torch.arange(500)
    a = RandomWindows(ids, seq_len=10, batch_size=4, seed=0)
    b = RandomWindows(ids.clone(), seq_len=10, batch_size=4, seed=0)
    assert all(torch.equal(a.batch_at(s), b.batch_at(s)) for s in range(10))
    assert not torch.equal(a.batch_at(0), a.batch_at(1))
    assert not torch.equal(a.batch_at(0), RandomWindows(ids, seq_len=10, batch_size=4, seed=1).batch_at(0))
    # iterating from step 0, or resuming at step 5, yields the batches of those steps
    first = list(itertools.islice(a, 8))
    assert all(torch.equal(x, a.batch_at(s)) for s, x in enumerate(first))
    resumed = list(itertools.islice(a.iterate(start_step=5), 3))
    assert all(torch.equal(x, y) for x, y in zip(resumed, first[5:8]))


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_random_windows_ranks_split_the_global_batch(world_size):
    windows = RandomWindows(torch.arange(300), seq_len=5, batch_size=8, seed=7)
    for step in (0, 9):
        global_batch = windows.batch_at(step)
        parts = [windows.batch_at(step, rank=r, world_size=world_size) for r in range(world_size)]
        assert all(p.shape == (8 // world_size, 6) for p in parts)
        regathered = torch.stack(parts, dim=1).reshape(8, 6)  # row i came from rank i % world_size
        assert torch.equal(regathered, global_batch)
        ranked = list(itertools.islice(windows.iterate(start_step=step, rank=world_size - 1, world_size=world_size), 1))
        assert torch.equal(ranked[0], parts[-1])


def test_random_windows_cover_the_whole_stream():
    ids = torch.arange(20)
    windows = RandomWindows(ids, seq_len=4, batch_size=16, seed=0)
    starts = torch.cat([windows.starts_at(s) for s in range(50)])
    assert int(starts.min()) == 0 and int(starts.max()) == 20 - 5  # first and last window that fit
    assert set(starts.tolist()) == set(range(16))


@given(n=st.integers(2, 200), seq_len=st.integers(1, 199), batch_size=st.integers(1, 9), seed=st.integers(0, 2**32),
       step=st.integers(0, 10**9))
def test_random_windows_in_bounds(n, seq_len, batch_size, seed, step):
    ids = torch.arange(n)
    if seq_len + 1 > n:
        with pytest.raises(ValueError, match=f"seq_len must be at most len\\(ids\\) - 1 = {n - 1}"):
            RandomWindows(ids, seq_len, batch_size, seed)
        return
    batch = RandomWindows(ids, seq_len, batch_size, seed).batch_at(step)
    assert batch.shape == (batch_size, seq_len + 1)
    assert bool((batch[:, 1:] - batch[:, :-1] == 1).all()) and int(batch.min()) >= 0 and int(batch.max()) < n


def test_random_windows_errors():
    ids = torch.arange(10)
    with pytest.raises(ValueError, match="ids must not be empty"):
        RandomWindows(torch.zeros(0, dtype=torch.long), seq_len=1, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="ids must be a 1-D torch.long tensor.*torch.int32"):
        RandomWindows(ids.int(), seq_len=2, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="ids must be a 1-D torch.long tensor.*shape \\(2, 5\\)"):
        RandomWindows(ids.view(2, 5), seq_len=2, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="seq_len must be at most len\\(ids\\) - 1 = 9.*got 10"):
        RandomWindows(ids, seq_len=10, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1, got 0"):
        RandomWindows(ids, seq_len=2, batch_size=0, seed=0)
    with pytest.raises(ValueError, match="seq_len must be an int >= 1, got 0"):
        RandomWindows(ids, seq_len=0, batch_size=1, seed=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0, got -1"):
        RandomWindows(ids, seq_len=2, batch_size=1, seed=-1)
    windows = RandomWindows(ids, seq_len=2, batch_size=6, seed=0)
    with pytest.raises(ValueError, match="world_size must be a positive divisor of batch_size=6, got 4"):
        windows.batch_at(0, rank=0, world_size=4)
    with pytest.raises(ValueError, match=r"rank must be an int in \[0, 2\), got 2"):
        windows.batch_at(0, rank=2, world_size=2)
    with pytest.raises(ValueError, match="step must be an int >= 0, got -1"):
        windows.batch_at(-1)


def test_random_windows_on_device(device):
    ids = torch.arange(100, device=device)
    batch = RandomWindows(ids, seq_len=8, batch_size=4, seed=0).batch_at(3)
    assert batch.device.type == device.type
    assert torch.equal(batch.cpu(), RandomWindows(ids.cpu(), seq_len=8, batch_size=4, seed=0).batch_at(3))


@given(n=st.integers(2, 120), seq_len=st.integers(1, 30), batch_size=st.integers(1, 7))
def test_sequential_windows_predict_every_token_once(n, seq_len, batch_size):
    ids = torch.arange(n) + 100
    if seq_len + 1 > n:
        with pytest.raises(ValueError, match="seq_len must be at most"):
            list(sequential_windows(ids, seq_len, batch_size))
        return
    batches = list(sequential_windows(ids, seq_len, batch_size))
    n_windows = (n - 1) // seq_len
    assert [b.shape[0] for b in batches] == [min(batch_size, n_windows - i) for i in range(0, n_windows, batch_size)]
    windows = torch.cat(batches)
    assert windows.shape == (n_windows, seq_len + 1)
    assert torch.equal(windows[:, 1:].reshape(-1), ids[1: n_windows * seq_len + 1])  # targets: each token once
    assert torch.equal(windows[:, :-1].reshape(-1), ids[: n_windows * seq_len])     # inputs: in order


def test_sequential_windows_do_not_alias_the_stream():
    ids = torch.arange(10)
    batch = next(sequential_windows(ids, seq_len=3, batch_size=2))
    batch.zero_()
    assert torch.equal(ids, torch.arange(10))
