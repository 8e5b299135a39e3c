"""The cost side of chapter 4: a multi-turn chat with a causal decoder, a prefix LM and an encoder-decoder.

``python -m llmarch.lab.multiturn`` (or ``python -m llmarch lab multiturn``) plays the same
dialogue shape with the three architectures: ``turns`` turns, each appending ``user_tokens``
tokens of user text and then a greedy reply of ``reply_tokens`` tokens, which joins the history.
The models have random weights of the same sizes as each other (the cost does not depend on the
values of the weights) and never stop early. Per turn it records the wall time, the tokens run
through the model, the floating-point operations (counted by ``torch.utils.flop_counter`` in a
separate pass on an eager-attention copy, so that attention is counted), the tokens whose keys
and values were reused from an earlier turn, and the bytes of keys and values held in the KV
cache at the end of the turn.

* ``causal`` -- one KV cache for the whole dialogue: a turn runs only its new tokens (user text
  and reply). Every earlier token's keys and values stay valid, because a token never attends
  to anything after it.
* ``prefix`` -- the dialogue so far plus the user text is the prefix, read bidirectionally. It
  grew, so every prefix token's keys and values changed (``llmarch.models.prefix_lm``): the whole
  prefix is run again, then the reply is decoded causally with a fresh cache.
* ``encdec`` -- the history is the encoder's input: the encoder runs again over all of it, every
  decoder layer recomputes its cross-attention keys and values, and the reply is decoded from the
  decoder start token.

All three are timed in one process on the same thread count, interleaved (causal, prefix, encdec,
causal, ...) ``repeats`` times; each turn's time is the median over the repeats. The result is
cached by ``llmarch.lab.run_cache`` under a hash of the settings, the CPU model and the code.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from .claims import Claims, claim_lines
from .matched_models import ARCHITECTURES, eager_twin, matched_model

__all__ = ["ARCHITECTURES", "SETTINGS", "QUICK_SETTINGS", "build_models", "one_turn", "play", "multiturn",
           "claims", "summary", "plot_multiturn"]

NAMES = {"causal": "causal decoder (cache kept)", "prefix": "prefix LM (prefix re-run)",
         "encdec": "encoder-decoder (encoder re-run)"}

#: The dialogue and the models (shaped as in ``llmarch.lab.matched_models``).
SETTINGS: dict = {
    "model": {"vocab_size": 512, "d_model": 256, "num_heads": 4, "num_layers": 4, "d_ff": 1024},
    "turns": 10, "user_tokens": 64, "reply_tokens": 16, "repeats": 3, "threads": 1, "seed": 0,
}

#: A small version for tests and doctests: the token counts have the same pattern.
QUICK_SETTINGS: dict = {
    "model": {"vocab_size": 64, "d_model": 32, "num_heads": 2, "num_layers": 2, "d_ff": 64},
    "turns": 4, "user_tokens": 5, "reply_tokens": 3, "repeats": 1, "threads": 1, "seed": 0,
}


def build_models(settings: dict = SETTINGS) -> dict:
    """``{"causal", "prefix", "encdec"}`` -> a model in eval mode, randomly initialised from the seed.

    The three hold about the same number of parameters (``llmarch.lab.matched_models``).

    >>> models = build_models(QUICK_SETTINGS)
    >>> sizes = [sum(p.numel() for p in m.parameters()) for m in models.values()]
    >>> sizes[0] == sizes[1], abs(sizes[2] / sizes[0] - 1) < 0.05
    (True, True)
    """
    m = settings["model"]
    max_positions = settings["turns"] * (settings["user_tokens"] + settings["reply_tokens"]) + 1
    return {arch: matched_model(arch, num_layers=m["num_layers"], d_ff=m["d_ff"], seed=settings["seed"],
                                decoder_start_token_id=0, vocab_size=m["vocab_size"], d_model=m["d_model"],
                                num_heads=m["num_heads"], position="learned", max_positions=max_positions,
                                dropout=0.0, attention_dropout=0.0, eos_token_id=None).eval()
            for arch in ARCHITECTURES}


def _cache_bytes(cache) -> int:
    """Bytes of the keys and values stored (not the spare capacity) in every layer of ``cache``."""
    total = 0
    for layer in cache.layers + (cache.cross_layers or []):
        if getattr(layer, "_keys", None) is None:
            continue
        keys, values = layer.get()
        total += keys.numel() * keys.element_size() + values.numel() * values.element_size()
    return total


def _greedy(logits) -> "torch.Tensor":  # noqa: F821
    return logits[:, -1].argmax(dim=-1, keepdim=True)


# --8<-- [start:turn]
def one_turn(arch: str, model, user, history, kept):
    """Append ``user`` ``(1, u)`` to the dialogue ``history`` ``(1, h)``; start a reply.

    ``kept``: the causal decoder's KV cache, carried from turn to turn (else ``None``).
    Returns ``(first reply token, cache, tokens run through the model, tokens reused)``;
    the caller generates the rest of the reply with ``cache``.
    """
    import torch

    from ..nn.cache import KVCache

    config = model.config
    if arch == "causal":    # the new tokens only; the cache holds all before them
        logits = model(user, cache=kept)
        return _greedy(logits), kept, user.shape[1], kept.offset - user.shape[1]
    prompt = torch.cat([history, user], dim=1)
    if arch == "prefix":    # the prefix grew: run all of it again, bidirectionally
        cache = KVCache.dynamic(config.num_layers)
        logits = model(prompt, cache=cache, prefix_lengths=prompt.shape[1])
        return _greedy(logits), cache, prompt.shape[1], 0
    # encoder-decoder: the source grew; encode all of it again, new cross-attention K/V
    cache = KVCache.dynamic(config.decoder_layers, cross_attention=True)
    start = torch.full((1, 1), config.decoder_start_token_id)
    logits = model.decode(start, model.encode(prompt), cache=cache)
    return _greedy(logits), cache, prompt.shape[1] + 1, 0
# --8<-- [end:turn]


def play(arch: str, model, user_turns: list, reply_tokens: int, *, count_flops: bool = False) -> list[dict]:
    """One dialogue: for each user text ``(1, user_tokens)`` in ``user_turns``, append it, reply greedily.

    Args:
        arch: ``"causal"``, ``"prefix"`` or ``"encdec"``.
        model: the model of ``arch`` (``build_models``).
        user_turns: ``(1, user_tokens)`` id tensors, one per turn.
        reply_tokens: tokens of every reply (no early stop).
        count_flops: also count each turn's floating-point operations (``torch.utils.flop_counter``;
            slower, so such a pass is not timed; pass an eager twin, see
            ``llmarch.lab.prefix_compare.eager_twin``, to count attention too).

    Returns:
        One dict per turn: ``{"seconds", "tokens", "reused", "cache_bytes", "context", "flops",
        "reply"}`` -- ``tokens``: tokens run through the model (encoder and decoder together) this
        turn; ``reused``: tokens whose cached keys and values served this turn; ``cache_bytes``:
        keys and values held at the end of the turn; ``context``: tokens of the dialogue after the
        turn; ``flops``: ``None`` unless counted; ``reply``: the reply's ids.

    Raises:
        ValueError: for an unknown ``arch``.

    >>> import torch
    >>> models = build_models(QUICK_SETTINGS)
    >>> users = [torch.tensor([[1, 2, 3, 4, 5]])] * 2
    >>> [t["tokens"] for t in play("prefix", models["prefix"], users, 3)]   # history + 5, + 2 steps
    [7, 15]
    """
    import contextlib

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..nn.cache import KVCache

    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    turns, history = [], torch.zeros(1, 0, dtype=torch.long)
    kept = KVCache.dynamic(model.config.num_layers) if arch == "causal" else None
    with torch.inference_mode():
        for user in user_turns:
            counter = FlopCounterMode(display=False) if count_flops else contextlib.nullcontext()
            start = time.perf_counter()
            with counter:
                token, cache, tokens, reused = one_turn(arch, model, user, history, kept)
                reply = [token]
                for _ in range(reply_tokens - 1):   # the rest of the reply: one token at a time, cached
                    logits = (model.decode(token, None, cache=cache) if arch == "encdec"
                              else model(token, cache=cache))
                    token = _greedy(logits)
                    reply.append(token)
                    tokens += 1
                if arch == "causal":    # the last reply token joins the kept cache now, not next turn
                    model(token, cache=cache)
                    tokens += 1
            seconds = time.perf_counter() - start
            reply_ids = torch.cat(reply, dim=1)
            history = torch.cat([history, user, reply_ids], dim=1)
            turns.append({"seconds": seconds, "tokens": tokens, "reused": int(reused),
                          "cache_bytes": _cache_bytes(cache), "context": history.shape[1],
                          "flops": counter.get_total_flops() if count_flops else None,
                          "reply": reply_ids[0].tolist()})
    return turns


def _measure(settings: dict, progress: bool = False) -> dict:
    import torch

    from .machine import cpu_info
    from .parallel_runs import JobProgress

    threads = torch.get_num_threads()
    torch.set_num_threads(settings["threads"])
    # one tick per chat played: the counting pass and every timed repeat, for each architecture
    bar = JobProgress("multiturn: chats", (settings["repeats"] + 1) * len(ARCHITECTURES)) if progress else None
    try:
        models = build_models(settings)
        generator = torch.Generator().manual_seed(settings["seed"])
        vocab = settings["model"]["vocab_size"]
        users = [torch.randint(1, vocab, (1, settings["user_tokens"]), generator=generator)
                 for _ in range(settings["turns"])]
        for arch in ARCHITECTURES:      # warm-up: first calls allocate and pick kernels
            play(arch, models[arch], users[:2], settings["reply_tokens"])
        flops, runs = {}, {arch: [] for arch in ARCHITECTURES}
        for arch in ARCHITECTURES:      # the counting pass, untimed
            flops[arch] = [t["flops"] for t in play(arch, eager_twin(models[arch]), users, settings["reply_tokens"],
                                                    count_flops=True)]
            if bar is not None:
                bar.done()
        for _ in range(settings["repeats"]):
            for arch in ARCHITECTURES:
                runs[arch].append(play(arch, models[arch], users, settings["reply_tokens"]))
                if bar is not None:
                    bar.done()
    finally:
        torch.set_num_threads(threads)
        if bar is not None:
            bar.close()
    result = {"settings": settings, "machine": cpu_info()["model"], "threads": settings["threads"], "archs": {}}
    for arch in ARCHITECTURES:
        first = runs[arch][0]
        result["archs"][arch] = {
            "parameters": sum(p.numel() for p in models[arch].parameters()),
            "ms": [1000 * statistics.median(run[t]["seconds"] for run in runs[arch]) for t in range(len(first))],
            **{field: [turn[field] for turn in first] for field in ("tokens", "reused", "cache_bytes", "context")},
            "flops": flops[arch],
            "reply": first[-1]["reply"]}
    return result


def multiturn(settings: dict = SETTINGS, *, refresh: bool = False, cache: bool = True,
              verbose: bool = False) -> dict:
    """The measurement of ``settings``, from the cache or measured now (``verbose``: a progress
    bar on a terminal, plain lines elsewhere).

    Returns:
        ``{"settings", "machine", "threads", "archs": {arch: {"parameters", "ms", "tokens",
        "reused", "cache_bytes", "context", "flops", "reply"}}}`` -- every list has one entry per
        turn (``ms``: the median wall time of the turn in milliseconds; ``flops``: counted in a
        separate, untimed pass).

    >>> result = multiturn(QUICK_SETTINGS, cache=False)
    >>> [data["tokens"] for data in result["archs"].values()]   # 5 user + 3 reply a turn
    [[8, 8, 8, 8], [7, 15, 23, 31], [8, 16, 24, 32]]
    """
    from .machine import cpu_info
    from .run_cache import cached_run, package_sources, source_key

    here = Path(__file__).resolve()
    helpers = ("machine.py", "matched_models.py", "run_cache.py")
    files = package_sources(here, *(here.with_name(name) for name in helpers), subpackages=("nn", "models"))
    key = source_key({**settings, "machine": cpu_info()["model"]}, files)
    return cached_run("multiturn", key, lambda: _measure(settings, verbose), refresh=refresh, cache=cache)


def claims(result: dict) -> Claims:
    """The statements section 4.4 makes about the arithmetic of the measured chat (not its
    times, which depend on the machine), each checked against ``result``."""
    archs = result["archs"]
    gflop = {arch: [f / 1e9 for f in archs[arch]["flops"]] for arch in ARCHITECTURES}

    def slope(values):                       # GFLOP added per turn, first to last turn
        return (values[-1] - values[0]) / (len(values) - 1)

    before_last = archs["causal"]["context"][-2] if len(archs["causal"]["context"]) > 1 else 0
    return [
        ("causal decoder: last turn's GFLOP < 1.5x the first turn's",
         gflop["causal"][-1] < 1.5 * gflop["causal"][0]),
        ("prefix LM: total GFLOP >= 3x the causal decoder's",
         sum(gflop["prefix"]) >= 3 * sum(gflop["causal"])),
        ("encoder-decoder: GFLOP grows per turn 0.4-0.6x as fast as the prefix LM's",
         0.4 <= slope(gflop["encdec"]) / slope(gflop["prefix"]) <= 0.6),
        ("causal decoder: the last turn reuses every earlier token's K/V",
         archs["causal"]["reused"][-1] == before_last),
    ]


def summary(result: dict) -> str:
    """The measurement as text of at most 88 columns: one row per turn with the time, the tokens
    run through the model and the floating-point operations of each architecture; then the
    totals, the tokens reused and the KV cache held after the last turn."""
    s, archs = result["settings"], result["archs"]
    m, short = s["model"], {"causal": "causal", "prefix": "prefix", "encdec": "encdec"}
    half = m["num_layers"] // 2
    lines = [f"{s['turns']} turns of {s['user_tokens']} user + {s['reply_tokens']} reply tokens",
             f"models: d_model {m['d_model']}, {m['num_layers']} layers (encoder-decoder {half} + "
             f"{m['num_layers'] - half}); parameters:",
             "  " + ", ".join(f"{a} {archs[a]['parameters']:,}" for a in ARCHITECTURES),
             f"machine: {result['machine']}, {result['threads']} thread(s); "
             f"median of {s['repeats']} repeats", "",
             f"{'':13}{'time per turn (ms)':^24}{'tokens run':^24}{'GFLOP':^24}",
             f"{'turn':>4}{'context':>9}" + "".join(f"{short[a]:>8}" for a in ARCHITECTURES) * 3]
    for t in range(s["turns"]):
        lines.append(f"{t + 1:>4}{archs['causal']['context'][t]:>9}"
                     + "".join(f"{archs[a]['ms'][t]:>8.1f}" for a in ARCHITECTURES)
                     + "".join(f"{archs[a]['tokens'][t]:>8}" for a in ARCHITECTURES)
                     + "".join(f"{archs[a]['flops'][t] / 1e9:>8.2f}" for a in ARCHITECTURES))
    lines.append(f"{'total':>13}" + "".join(f"{sum(archs[a]['ms']):>8.0f}" for a in ARCHITECTURES)
                 + "".join(f"{sum(archs[a]['tokens']):>8}" for a in ARCHITECTURES)
                 + "".join(f"{sum(archs[a]['flops']) / 1e9:>8.2f}" for a in ARCHITECTURES))
    lines += ["", "tokens whose cached K/V were reused in the last turn: "
              + ", ".join(f"{a} {archs[a]['reused'][-1]}" for a in ARCHITECTURES),
              "KV cache held after the last turn: "
              + ", ".join(f"{a} {archs[a]['cache_bytes'][-1] / 1024:,.0f} KiB" for a in ARCHITECTURES)]
    if result["settings"] == SETTINGS:       # the page's statements are about this chat only
        lines += ["", "what section 4.4 says about this chat, checked:", *claim_lines(claims(result))]
    return "\n".join(line.rstrip() for line in lines)


def plot_multiturn(result: dict, axes, *, labels: dict | None = None) -> None:
    """Per-turn time and floating-point operations, on two matplotlib axes ``axes``; ``labels``
    overrides the English texts (keys: the architectures, ``turn``, ``ms``, ``flops``)."""
    text = {**NAMES, "turn": "turn", "ms": "time per turn (ms, median)",
            "flops": "GFLOP per turn (counted)", **(labels or {})}
    colors = {"causal": "#4c72b0", "prefix": "#dd8452", "encdec": "#55a868"}
    markers = {"causal": "o", "prefix": "s", "encdec": "^"}
    turns = list(range(1, result["settings"]["turns"] + 1))
    for arch in ARCHITECTURES:
        data = result["archs"][arch]
        axes[0].plot(turns, data["ms"], marker=markers[arch], color=colors[arch], label=text[arch])
        axes[1].plot(turns, [f / 1e9 for f in data["flops"]], marker=markers[arch], color=colors[arch],
                     label=text[arch])
    for ax, ylabel in zip(axes, (text["ms"], text["flops"])):
        ax.set_xlabel(text["turn"])
        ax.set_ylabel(ylabel)
        ax.set_xticks(turns)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)


def main(argv: list[str] | None = None) -> int:
    from .lab_command import lab_parser, report_run

    args = lab_parser("python -m llmarch lab multiturn", __doc__, quick="tiny models and 4 turns",
                      plot="the per-turn figure", workers=False).parse_args(argv)
    settings = QUICK_SETTINGS if args.quick else SETTINGS
    print(f"measuring {settings['turns']} turns x {len(ARCHITECTURES)} architectures x {settings['repeats']} "
          "repeats ...", file=sys.stderr, flush=True)
    result = multiturn(settings, refresh=args.refresh, verbose=True)
    return report_run(args, result, summary, plot_multiturn, columns=2, size=(10, 3.8))


if __name__ == "__main__":
    sys.exit(main())
