"""What chapter 5.2 and 5.3 measure in a model of the matched pair (``why_causal_vs_mlm``).

The metrics are plain functions of tensors: ``attention_spectrum`` (singular values of attention
matrices, numerical and effective rank), ``token_uniformity`` (distance of token representations
from "all equal" and from rank one), ``context_cross_entropy`` (how predictable a character is from
counts of its neighbours), ``probe_labels`` (the properties the linear probes read).
``measure_member`` applies them all to one trained model and to its initialisation, on fixed
held-out windows, and returns JSON-able numbers.
"""

from __future__ import annotations

__all__ = ["PROPERTIES", "attention_spectrum", "token_uniformity", "context_cross_entropy", "probe_labels",
           "heldout_windows", "measure_member", "ngram_table"]

#: The probed properties: two that need only the left context, one that needs the right.
PROPERTIES = ("word_position", "two_back", "next_char")

def attention_spectrum(maps, tol: float = 1e-3) -> dict:
    """Singular values of attention matrices, each divided by its largest.

    Args:
        maps: ``(..., n, n)`` attention weights (any leading dimensions).
        tol: a singular value counts towards the numerical rank when it exceeds ``tol * sigma_max``.

    Returns:
        ``{"spectrum": (..., n) float64, descending, spectrum[..., 0] = 1; "rank": (...) the
        numerical rank; "erank": (...) the effective rank exp(H(p)) with p = sigma / sum(sigma)
        (Roy & Vetterli, 2007); "smallest": (...) sigma_min / sigma_max}``.

    >>> import torch
    >>> out = attention_spectrum(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    >>> out["rank"].item(), round(out["erank"].item(), 3), round(out["smallest"].item(), 3)
    (2, 1.803, 0.382)
    """
    import torch

    if maps.ndim < 2 or maps.shape[-1] != maps.shape[-2]:
        raise ValueError(f"maps must be (..., n, n), got shape {tuple(maps.shape)}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    sigma = torch.linalg.svdvals(maps.double())
    spectrum = sigma / sigma[..., :1]
    p = sigma / sigma.sum(-1, keepdim=True)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(-1)
    return {"spectrum": spectrum, "rank": (spectrum > tol).sum(-1), "erank": entropy.exp(),
            "smallest": spectrum[..., -1]}


def token_uniformity(states) -> dict:
    """How far token representations are from collapse (Dong et al., 2021), per matrix.

    Args:
        states: ``(..., n, d)``: n token vectors per matrix.

    Returns:
        ``{"uniform": ||X - 1 mean(X)||_F / ||X||_F (0: all tokens equal), "rank1":
        ||X - X_1||_F / ||X||_F with X_1 the best rank-1 approximation}``, each ``(...)``.

    >>> import torch
    >>> same = torch.ones(3, 4)
    >>> [round(v.item(), 3) for v in token_uniformity(same).values()]
    [0.0, 0.0]
    """
    import torch

    x = states.double()
    norm = torch.linalg.matrix_norm(x)
    uniform = torch.linalg.matrix_norm(x - x.mean(-2, keepdim=True)) / norm
    sigma = torch.linalg.svdvals(x)
    return {"uniform": uniform, "rank1": sigma[..., 1:].pow(2).sum(-1).sqrt() / norm}


def context_cross_entropy(train_ids, test_ids, *, left: int, right: int, vocab_size: int,
                          alpha: float = 0.01) -> float:
    """Cross-entropy (nats per character) of ``test_ids`` under counts from ``train_ids`` of each
    character given ``left`` characters before it and ``right`` after it (add-``alpha`` smoothing).

    >>> import torch
    >>> text = torch.tensor([0, 1, 2] * 50)
    >>> context_cross_entropy(text, text, left=1, right=0, vocab_size=3) < 0.01
    True
    """
    import torch

    if left < 0 or right < 0:
        raise ValueError(f"left and right must be >= 0, got left={left}, right={right}")

    def keys(ids):
        n = ids.numel() - left - right
        if n < 1:
            raise ValueError(f"ids must hold more than left + right = {left + right} tokens, got {ids.numel()}")
        context = torch.zeros(n, dtype=torch.long)
        for offset in [*range(left), *range(left + 1, left + 1 + right)]:
            context = context * vocab_size + ids[offset:offset + n]
        return context, context * vocab_size + ids[left:left + n]

    def lookup(table, counts, query):
        at = torch.searchsorted(table, query).clamp_max(table.numel() - 1)
        return torch.where(table[at] == query, counts[at], 0).double()

    train_context, train_joint = keys(train_ids)
    test_context, test_joint = keys(test_ids)
    joint = lookup(*torch.unique(train_joint, return_counts=True), test_joint)
    context = lookup(*torch.unique(train_context, return_counts=True), test_context)
    return float(-((joint + alpha) / (context + alpha * vocab_size)).log().mean())


def probe_labels(windows, chars: list[str], word_cap: int = 6) -> dict:
    """The probed properties of every position of ``windows (b, n + 1)`` (inputs ``[:, :n]``; the
    last column is only the next character of position ``n - 1``), ``(labels, valid)`` each:

    * ``word_position``: letters of the current word up to here, capped at ``word_cap`` (0: not a
      letter) -- needs the left context only;
    * ``two_back``: the character two positions back (left context; positions 0, 1 invalid);
    * ``next_char``: the next character -- needs the right context.

    >>> import torch
    >>> labels = probe_labels(torch.tensor([[0, 1, 1, 2, 1]]), ["a", "b", " "])
    >>> labels["word_position"][0].tolist(), labels["two_back"][1].tolist()
    ([[1, 2, 3, 0]], [[False, False, True, True]])
    """
    import torch

    letter = torch.tensor([c.isalpha() for c in chars])[windows[:, :-1]]
    run = torch.zeros_like(windows[:, :-1])
    for t in range(run.shape[1]):
        run[:, t] = torch.where(letter[:, t], (run[:, t - 1] if t else 0) + 1, 0)
    inputs = windows[:, :-1]
    everywhere = torch.ones_like(inputs, dtype=torch.bool)
    two_back = torch.cat([torch.zeros_like(inputs[:, :2]), inputs[:, :-2]], dim=1)
    return {"word_position": (run.clamp_max(word_cap), everywhere),
            "two_back": (two_back, (torch.arange(inputs.shape[1]) >= 2).expand_as(inputs)),
            "next_char": (windows[:, 1:], everywhere)}


def heldout_windows(val_ids, count: int, seq_len: int):
    """``count`` windows of ``seq_len + 1`` ids spread evenly over ``val_ids``: ``(count, seq_len + 1)``."""
    import torch

    if count * (seq_len + 1) > val_ids.numel():
        raise ValueError(f"count must fit {val_ids.numel()} held-out ids in windows of {seq_len + 1}, got {count}")
    starts = torch.linspace(0, val_ids.numel() - seq_len - 1, count).long()
    return torch.stack([val_ids[s:s + seq_len + 1] for s in starts.tolist()])


def _floats(tensor, digits: int = 5) -> list:
    """A tensor as nested lists of floats with ``digits`` significant digits (a small cache)."""
    return [_floats(row, digits) for row in tensor] if tensor.ndim else float(f"{float(tensor):.{digits}g}")


def _initial_model(objective, model, seed: int):
    """The untrained model ``model`` started from: ``run_setup.build_model``'s draw for ``seed``."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return objective.build_model(model.config).eval()


def _flops_and_predicted(model, objective, window, base_vocab: int) -> tuple[int, int]:
    """FLOPs of one training step (forward + backward) on ``window``, counted on an eager copy of
    ``model`` (so that attention's products count), and the tokens that step predicts."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    twin = objective.build_model(model.config.replace(backend="eager"))
    twin.load_state_dict(model.state_dict())
    counter = FlopCounterMode(display=False)
    with counter:
        loss, predicted = objective.loss(twin.train(), window, config=twin.config, base_vocab=base_vocab,
                                         generator=torch.Generator().manual_seed(0))
        loss.backward()
    return counter.get_total_flops(), predicted


def _losses(kind: str, model, windows, base_vocab: int, mask_seed: int) -> dict:
    """Held-out loss per predicted token with the kind's own objective, and on the *same* hidden
    characters for both kinds (the masked LM's selected positions, all set to ``[MASK]``; the
    causal LM predicts each from the characters before it)."""
    import torch
    import torch.nn.functional as F

    from ..training.masked_lm import mask_tokens

    inputs = windows[:, :-1]
    masked, labels = mask_tokens(inputs, mask_token_id=base_vocab, vocab_size=base_vocab + 1,
                                 generator=torch.Generator().manual_seed(mask_seed))
    hidden = labels != -100
    hidden[:, 0] = False                           # the causal LM has nothing to predict position 0 from
    with torch.no_grad():
        if kind == "causal":
            ce = F.cross_entropy(model(inputs).transpose(1, 2), windows[:, 1:], reduction="none")
            return {"predicted": float(ce.mean()), "same_chars": float(ce[:, :-1][hidden[:, 1:]].mean())}
        predicted = F.cross_entropy(model(masked)[labels != -100], labels[labels != -100])
        same = F.cross_entropy(model(inputs.masked_fill(hidden, base_vocab))[hidden], inputs[hidden])
    return {"predicted": float(predicted), "same_chars": float(same)}


def _inside(model, windows, chars: list[str], settings: dict) -> dict:
    """Attention spectra, token uniformity and probe accuracies of ``model`` on ``windows``."""
    from .inspect_layers import attention_maps, layer_states
    from .linear_probe import probe_classification

    inputs, held = windows[:, :-1], settings["heldout"]
    maps = attention_maps(model, inputs[:held["rank_windows"]])            # (layers, windows, heads, n, n)
    spectrum = attention_spectrum(maps, settings["rank_tol"])
    states = layer_states(model, inputs)                                  # (layers + 1, windows, n, d)
    uniformity = token_uniformity(states[:, :held["rank_windows"]])
    k, probes = held["probe_train"], {}
    for name, (labels, valid) in probe_labels(windows, chars, settings["word_cap"]).items():
        classes = settings["word_cap"] + 1 if name == "word_position" else len(chars)
        train, test = valid[:k], valid[k:]
        probes[name] = [probe_classification(x[:k][train], labels[:k][train], x[k:][test], labels[k:][test], classes,
                                             settings["probe_l2"]) for x in states]
    return {"spectrum": _floats(spectrum["spectrum"].mean(1), 4),
            "rank": _floats(spectrum["rank"].double().mean(1)), "erank": _floats(spectrum["erank"].mean(1)),
            "smallest": _floats(spectrum["smallest"].median(1).values),
            "smallest_min": _floats(spectrum["smallest"].amin(1)),
            "uniform": _floats(uniformity["uniform"].mean(1)), "rank1": _floats(uniformity["rank1"].mean(1)),
            "probes": probes}


def _majority(windows, chars: list[str], settings: dict) -> dict:
    """Accuracy of always answering the probe-training windows' most frequent label."""
    k, out = settings["heldout"]["probe_train"], {}
    for name, (labels, valid) in probe_labels(windows, chars, settings["word_cap"]).items():
        common = labels[:k][valid[:k]].mode().values
        out[name] = float((labels[k:][valid[k:]] == common).double().mean())
    return out


def measure_member(kind: str, seed: int, run, settings: dict) -> dict:
    """Everything the pages need from one trained ``run`` (``text_models.TrainedText``) and from
    its initialisation, on ``settings["heldout"]["windows"]`` held-out windows.

    Returns:
        ``{"parameters", "flops_per_step", "predicted_per_step", "tokens_per_step", "loss":
        {"predicted", "same_chars"}, "majority": {property: accuracy}, "trained", "initial"}``;
        ``trained`` and ``initial`` hold per layer and head (means over the windows)
        ``"spectrum"`` (n values), ``"rank"``, ``"erank"``, ``"smallest"`` (median),
        ``"smallest_min"``, per state (embeddings, then each layer) ``"uniform"`` and ``"rank1"``,
        and ``"probes"``: ``{property: [test accuracy per state]}``.
    """
    from ..training.data import RandomWindows
    from ..training.objectives import make_objective
    from .text_models import OBJECTIVES

    train, base = settings["train"], run.tokenizer.vocab_size
    chars = [run.tokenizer.decode([i]) for i in range(base)]
    windows = heldout_windows(run.val_ids, settings["heldout"]["windows"], train["seq_len"])
    objective = make_objective(OBJECTIVES[kind], run.model.config.architecture)
    first = RandomWindows(run.train_ids, train["seq_len"], train["batch_size"], seed).batch_at(0)
    flops, predicted = _flops_and_predicted(run.model, objective, first, base)
    return {"parameters": sum(p.numel() for p in run.model.parameters()), "flops_per_step": flops,
            "predicted_per_step": predicted, "tokens_per_step": train["seq_len"] * train["batch_size"],
            "loss": _losses(kind, run.model, windows, base, settings["heldout"]["mask_seed"]),
            "majority": _majority(windows, chars, settings),
            "trained": _inside(run.model, windows, chars, settings),
            "initial": _inside(_initial_model(objective, run.model, seed), windows, chars, settings)}


def ngram_table(settings: dict) -> list[dict]:
    """``context_cross_entropy`` of the corpus' held-out text for each ``[left, right]`` of
    ``settings["ngram"]["contexts"]``: ``[{"left", "right", "nats"}]``."""
    from ..training.run_setup import prepare_data

    tokenizer, train_ids, val_ids = prepare_data(settings["corpus"], tokenizer_text="all")
    return [{"left": left, "right": right,
             "nats": context_cross_entropy(train_ids, val_ids, left=left, right=right, vocab_size=tokenizer.vocab_size,
                                           alpha=settings["ngram"]["alpha"])}
            for left, right in settings["ngram"]["contexts"]]
