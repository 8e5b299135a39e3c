"""``python -m llmarch generate DIR`` (text streamed as it is sampled) and ``python -m llmarch eval DIR``.

``DIR`` is a run folder written by ``train`` -- or any checkpoint folder with a tokenizer next to
the weights.
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

__all__ = ["add_generate_arguments", "run_generate", "add_eval_arguments", "run_eval", "TextStreamer"]


def add_generate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a run folder (from `train`) or a checkpoint with a tokenizer")
    parser.add_argument("--prompt", required=True, help="the text to continue (the source text of an encoder-decoder)")
    parser.add_argument("--max-new-tokens", type=int, default=100, help="tokens to generate at most (default 100)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature; 0 = greedy decoding (default 1.0)")
    parser.add_argument("--top-k", type=int, default=None, help="sample among the k most probable tokens only")
    parser.add_argument("--top-p", type=float, default=None, help="nucleus sampling: the smallest set of tokens "
                        "whose probability reaches p")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    parser.add_argument("--device", default="cpu", help="device to run on (default cpu)")


class TextStreamer:
    """Turn ids arriving one by one into text printed as soon as it is complete.

    A byte-level BPE token can end in the middle of a UTF-8 character (a Chinese character is 3
    bytes): the text is re-decoded from all new ids and printed up to the last complete
    character. Ids above the tokenizer's vocabulary (sentinels, ``[MASK]``) print as
    ``<extra_id_N>`` / ``<id N>``.

    >>> from llmarch.training.tokenizers import CharTokenizer
    >>> import io
    >>> out = io.StringIO()
    >>> streamer = TextStreamer(CharTokenizer.train("床前明月光"), vocab_size=8, stream=out)
    >>> for token in [4, 5, 7, 1]:
    ...     streamer.put(token)
    >>> out.getvalue()
    '明月<extra_id_0>光'
    """

    def __init__(self, tokenizer, *, vocab_size: int, stream=None) -> None:
        self.tokenizer, self.vocab_size = tokenizer, vocab_size
        self.stream = stream if stream is not None else sys.stdout
        self.ids: list[int] = []
        self.printed = 0

    def _text(self) -> str:
        parts, run = [], []
        for i in self.ids:
            if i < self.tokenizer.vocab_size:
                run.append(i)
                continue
            if run:
                parts.append(self.tokenizer.decode(run))
                run = []
            parts.append(f"<extra_id_{self.vocab_size - 1 - i}>")
        if run:
            parts.append(self.tokenizer.decode(run))
        return "".join(parts)

    def put(self, token: int) -> None:
        self.ids.append(int(token))
        text = self._text()
        end = len(text.rstrip("\ufffd"))  # hold back an incomplete UTF-8 sequence
        if end > self.printed:
            self.stream.write(text[self.printed:end])
            self.stream.flush()
            self.printed = end

    def end(self) -> None:
        text = self._text()
        self.stream.write(text[self.printed:] + "\n")
        self.stream.flush()


#: Decoder-only objectives whose models do not learn p(next token | tokens so far) at every
#: position, so ``generate`` (next-token decoding) would read out something they were not trained for.
NOT_LEFT_TO_RIGHT = {
    "unilm": "a cloze task (it predicts [MASK] tokens in place, under a mask drawn per row)",
    "glm": "blank infilling (it decodes a span after [S] with 2D positions, Du et al. 2022 §2.1-2.2)",
}


def run_generate(args: argparse.Namespace) -> int:
    from ..nn.checks import check_positive_int
    from .run_setup import load_run

    check_positive_int("--max-new-tokens", args.max_new_tokens)
    if args.temperature < 0:
        raise ValueError(f"--temperature must be >= 0 (0 = greedy), got {args.temperature}")
    model, tokenizer, run_info = load_run(args.directory, device=args.device)
    objective = (run_info.get("objective") or {}).get("name")
    if objective in NOT_LEFT_TO_RIGHT:
        raise ValueError(f"{args.directory} holds a model trained with objective {objective!r}, "
                         f"{NOT_LEFT_TO_RIGHT[objective]}: left-to-right generation is not what it learned; "
                         "train with --objective causal_lm or prefix_lm to generate, or score it with "
                         "`python -m llmarch eval`")
    if not hasattr(model, "stream"):
        raise ValueError(f"{args.directory} holds an {model.config.architecture} model ({type(model).__name__}), "
                         "which does not generate text; score it with `python -m llmarch eval`")
    ids = tokenizer.encode(args.prompt)
    if not ids:
        raise ValueError(f"--prompt must encode to at least one token, got {args.prompt!r}")
    input_ids = torch.tensor([ids], device=args.device)
    sample = args.temperature > 0
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    decoder_only = model.config.architecture == "decoder_only"
    streamer = TextStreamer(tokenizer, vocab_size=model.config.vocab_size)
    if decoder_only:
        sys.stdout.write(args.prompt)
    tokens = model.stream(input_ids, args.max_new_tokens, do_sample=sample, temperature=args.temperature or 1.0,
                          top_k=args.top_k if sample else None, top_p=args.top_p if sample else None,
                          generator=generator)
    eos = model.config.eos_token_id
    for token in tokens:
        if eos is not None and int(token[0]) == eos:
            break
        streamer.put(int(token[0]))
    streamer.end()
    return 0


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a run folder written by `train`")
    parser.add_argument("--data", required=True, help="corpus name (tang300, psalms) or a UTF-8 text file")
    parser.add_argument("--split", choices=("all", "train", "val"), default="all",
                        help="which part of the text: all of it, or the run's train/validation split (default all)")
    parser.add_argument("--seq-len", type=int, default=None, help="window length (default: the run's)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per batch (default 8)")
    parser.add_argument("--max-batches", type=int, default=None, help="stop after this many batches (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the objective's masks / spans (default 0)")
    parser.add_argument("--device", default="cpu", help="device to run on (default cpu)")


def run_eval(args: argparse.Namespace) -> int:
    from ..nn.checks import check_positive_int
    from .corpus import read_text, split_text
    from .data import encode_corpus
    from .evaluation import evaluate
    from .objectives import OBJECTIVES, make_objective
    from .run_setup import load_run

    check_positive_int("--batch-size", args.batch_size)
    model, tokenizer, run_info = load_run(args.directory, device=args.device)
    seq_len = args.seq_len or run_info.get("train", {}).get("seq_len") or 128
    check_positive_int("--seq-len", seq_len)
    saved = dict(run_info.get("objective") or {})
    name = saved.pop("name", None)
    objective = (OBJECTIVES[name](**saved) if name in OBJECTIVES else make_objective(None, model.config.architecture))
    text = read_text(args.data)
    if args.split != "all":
        fraction = run_info.get("options", {}).get("val_fraction", 0.1)
        text = dict(zip(("train", "val"), split_text(text, fraction)))[args.split]
    ids = encode_corpus(tokenizer, text)
    result = evaluate(model, objective, ids, config=model.config, seq_len=seq_len, batch_size=args.batch_size,
                      base_vocab=tokenizer.vocab_size, max_batches=args.max_batches, device=args.device,
                      seed=args.seed)
    print(json.dumps({"data": args.data, "split": args.split, "objective": objective.name, "seq_len": seq_len,
                      **result}, ensure_ascii=False))
    return 0
