"""Command line: ``python -m llmarch <command> ...``.

Each benchmark lives in ``llmarch.lab.bench_<name>`` and exposes ``run(args)`` and, optionally,
``add_arguments(parser)`` for options of its own; it is imported only when asked for, so
``--help`` stays fast (``python -m llmarch bench NAME --help`` lists a benchmark's own options).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
BENCHMARKS = {
    "attention": ("llmarch.lab.bench_attention", "MultiHeadAttention vs torch.nn.MultiheadAttention; eager vs sdpa memory"),
    "generate": ("llmarch.lab.bench_generate", "greedy decoding tokens/s vs Hugging Face GPT-2; cache; bf16"),
    "encoder": ("llmarch.lab.bench_encoder", "BERT forward throughput vs Hugging Face; fraction of matmul peak"),
    "seq2seq": ("llmarch.lab.bench_seq2seq", "T5 greedy decoding tokens/s vs Hugging Face"),
    "train": ("llmarch.lab.bench_train", "training-step tokens/s vs Hugging Face GPT-2; fraction of matmul peak"),
}


# name -> (module with main(argv), one-line help): ``python -m llmarch lab NAME [its options]``
LABS = {
    "prefix-compare": ("llmarch.lab.prefix_compare", "chapter 4: causal decoder, prefix LM and encoder-decoder "
                       "trained on one task (seeds, held-out exact match)"),
    "multiturn": ("llmarch.lab.multiturn", "chapter 4: time per turn of a chat; KV cache kept, prefix re-run, "
                  "encoder re-run"),
    # chapter 5, "Why decoder-only won": one experiment per reason of the article
    "zero-shot": ("llmarch.lab.why_zero_shot", "chapter 5.1: three architectures on a task mixture, scored on "
                  "held-out task types"),
    "rank": ("llmarch.lab.why_rank", "chapter 5.2: singular values of trained causal and bidirectional "
             "attention maps"),
    "harder-task": ("llmarch.lab.why_harder_task", "chapter 5.3: causal LM vs masked LM at the same compute: "
                    "loss per predicted token, linear probes"),
    "in-context": ("llmarch.lab.why_in_context", "chapter 5.4: in-context learning, error by number of "
                   "examples; causal vs prefix"),
    "positions": ("llmarch.lab.why_positions", "chapter 5.5: no positional encoding: probing position by "
                  "layer; loss by position kind"),
    "kv-cache": ("llmarch.lab.multiturn", "chapter 5.6: the multi-turn chat of chapter 4.4 (same as "
                 "'multiturn')"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmarch",
        description="llmarch: the Transformer families (GPT, BERT, Transformer/T5, prefix-LM), explained and implemented.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser("bench", help="run a benchmark against the reference implementation")
    which = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        sub = which.add_parser(name, help=help_text, add_help=False)
        sub.set_defaults(module=module_name)
        sub.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke run)")
        sub.add_argument("-h", "--help", action="store_true", dest="bench_help", help=argparse.SUPPRESS)
    _add_training_commands(commands)
    lab = commands.add_parser("lab", help="run one of the chapters' experiments (cached; see llmarch.lab)")
    experiments = lab.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name, (module_name, help_text) in LABS.items():
        sub = experiments.add_parser(name, help=help_text, add_help=False)
        sub.set_defaults(module=module_name)
    masks = commands.add_parser("masks", help="print the attention masks of the four families")
    masks.add_argument("--seq-len", type=int, default=6)
    masks.add_argument("--prefix-len", type=int, default=3)
    return parser


def _add_training_commands(commands) -> None:
    """``train``, ``generate`` and ``eval`` (their flags live in ``llmarch.training.command_*``)."""
    from .training import command_generate, command_train

    train = commands.add_parser(
        "train", help="train a model on a corpus (one process, or data-parallel under torchrun)",
        description=command_train.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    command_train.add_arguments(train)
    train.set_defaults(handler=command_train.run)
    generate = commands.add_parser("generate", help="continue a prompt with a trained model, streaming the text",
                                   description=command_generate.__doc__)
    command_generate.add_generate_arguments(generate)
    generate.set_defaults(handler=command_generate.run_generate)
    evaluate = commands.add_parser("eval", help="validation loss and perplexity of a trained model on a text",
                                   description=command_generate.__doc__)
    command_generate.add_eval_arguments(evaluate)
    evaluate.set_defaults(handler=command_generate.run_eval)


def _print_masks(seq_len: int, prefix_len: int) -> None:
    from .nn import causal_mask, prefix_lm_mask, unilm_mask

    def show(title, mask):
        print(title)
        for row in mask.reshape(seq_len, -1).int().tolist():
            print("  " + " ".join("■" if cell else "·" for cell in row))

    show("bidirectional (encoder-only, BERT)", unilm_mask("bidirectional", seq_len))
    show("causal (decoder-only, GPT)", causal_mask(seq_len))
    show(f"prefix-LM (UniLM, prefix = {prefix_len})", prefix_lm_mask(prefix_len, seq_len))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command not in ("bench", "lab"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in ("train", "generate", "eval"):
        try:
            return args.handler(args)
        except (ValueError, TypeError, FileNotFoundError) as error:  # bad input: a message, not a traceback
            print(f"python -m llmarch {args.command}: error: {error}", file=sys.stderr)
            return 2
    if args.command == "masks":
        if not 1 <= args.seq_len <= 64:  # the masks are printed as grids
            parser.error(f"--seq-len must be in [1, 64], got {args.seq_len}")
        if not 0 <= args.prefix_len <= args.seq_len:
            parser.error(f"--prefix-len must be in [0, --seq-len = {args.seq_len}], got {args.prefix_len}")
        _print_masks(args.seq_len, args.prefix_len)
        return 0
    if args.command == "lab":  # the experiment parses its own options (--help lists them)
        return importlib.import_module(args.module).main(rest) or 0
    module = importlib.import_module(args.module)
    own = argparse.ArgumentParser(prog=f"python -m llmarch bench {args.benchmark}")
    own.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (a smoke run)")
    if hasattr(module, "add_arguments"):
        module.add_arguments(own)
    if args.bench_help:
        own.print_help()
        return 0
    own.parse_args(rest + (["--quick"] if args.quick else []), namespace=args)
    return module.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
