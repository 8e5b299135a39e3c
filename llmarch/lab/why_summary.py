"""Chapter 5's closing table: each of the article's six reasons, what its experiment measured
here, how strong that evidence is, and what the literature says.

The "measured here" column is written from the experiments' cached results (the same runs the
sections show), so the table cannot drift from them; the other two columns are judgements,
stated once in both languages, and :func:`claims` checks the statements the chapter's overview
makes about the results. ``python -m llmarch lab`` runs each experiment; this module only reads
them (training whatever the cache lacks).
"""

from __future__ import annotations

__all__ = ["REASONS", "load_results", "measured", "closing_table", "claims"]

#: The sections of chapter 5, in order: (page, zh title, en title).
REASONS = (
    ("zero-shot", "5.1 零样本泛化", "5.1 zero-shot generalisation"),
    ("rank", "5.2 注意力满秩", "5.2 full-rank attention"),
    ("harder-task", "5.3 更难的预训练任务", "5.3 a harder pretraining task"),
    ("in-context", "5.4 上下文学习", "5.4 in-context learning"),
    ("positions", "5.5 隐式位置信息", "5.5 implicit positions"),
    ("kv-cache", "5.6 复用 KV 缓存", "5.6 KV-cache reuse"),
)

#: How strong the evidence is, and what the literature says (both languages).
JUDGEMENT = {
    "zero-shot": {
        "en": ("**weak**: one synthetic task, wide spread over seeds; the toy resembles the "
               "paper's finetuning setting, not its pretraining-only one",
               "Wang et al. (2022): the causal decoder is best only after unsupervised pretraining "
               "(EAI-Eval 44.2 vs 43.5 vs 39.9); after multitask finetuning the MLM encoder-decoder "
               "is (T0-Eval 60.6 vs 51.4). T5 (Raffel et al., 2020) and UL2 (Tay et al., 2022) "
               "favour encoder-decoders with denoising"),
        "zh": ("**弱**：只有一个合成任务，种子间波动很大；这个小实验像论文的微调设定，而不是只做预训练的设定",
               "Wang et al.（2022）：只有在无监督预训练之后，因果 decoder 才最好（EAI-Eval 44.2 对 43.5 对 "
               "39.9）；多任务微调之后，用 MLM 预训练的 encoder-decoder 最好（T0-Eval 60.6 对 51.4）。"
               "T5（Raffel et al., 2020）和 UL2（Tay et al., 2022）更看好带去噪目标的 encoder-decoder"),
    },
    "rank": {
        "en": ("**moderate** for the measurement (clear margins, but it depends on the tolerance); "
               "**none** for \"stronger modelling\"",
               "Bhojanapalli et al. (2020): the low-rank bottleneck of a head size below the sequence "
               "length applies to both masks; Dong et al. (2021) is about token representations, which "
               "skip connections and MLPs keep from collapsing; Su (2023) calls the argument a guess"),
        "zh": ("测量本身**中等**（差距清楚，但依赖容差）；对“建模能力更强”**没有**证据",
               "Bhojanapalli et al.（2020）：头维度小于序列长度造成的低秩瓶颈对两种掩码都成立；Dong et al."
               "（2021）讲的是词元表示的秩，残差连接和 MLP 会阻止它塌缩；苏剑林（2023）自己称这个论证为猜测"),
    },
    "harder-task": {
        "en": ("**strong** that left-only prediction is harder per token and that, at small compute, "
               "next-token prediction learns faster (all positions are targets); **none** for a "
               "higher ceiling at scale",
               "Clark et al. (2020, ELECTRA): MLM learns from 15% of the tokens; Artetxe et al. "
               "(2022): bidirectionality helps fine-tuning and infilling, hurts next-token prediction "
               "and zero-shot use, consistently up to 6.7B parameters"),
        "zh": ("“只看左边更难预测”和“小算力下下一个词预测学得更快（每个位置都是目标）”证据**强**；"
               "“规模大时上限更高”**没有**证据",
               "Clark et al.（2020，ELECTRA）：MLM 只从 15% 的词元学习；Artetxe et al.（2022）：双向性有利于"
               "微调和填空，不利于下一个词预测和零样本使用，到 67 亿参数都如此"),
    },
    "in-context": {
        "en": ("**weak**: one synthetic task, 3 seeds, models trained on the in-context task itself",
               "Dai et al. (2023): the duality holds for one relaxed (linear) layer and ranks no "
               "architecture; Ding et al. (2023): a prefix LM is *better* at in-context learning than "
               "a causal LM; UL2 20B, an encoder-decoder, is a strong few-shot learner"),
        "zh": ("**弱**：只有一个合成任务、3 个种子，模型是直接在上下文任务上训练的",
               "Dai et al.（2023）：对偶只对去掉 softmax 的单层成立，不区分架构；Ding et al.（2023）："
               "Prefix-LM 的上下文学习**优于**因果语言模型；200 亿参数的 UL2 是 encoder-decoder，少样本能力很强"),
    },
    "positions": {
        "en": ("**strong** for the mechanism (a symmetry theorem and a probe); **weak** as a reason "
               "decoder-only won: real encoders carry positions, and large LLMs keep theirs",
               "Haviv et al. (2022): causal LMs without positions are competitive, masked LMs without "
               "them fall behind; Kazemnejad et al. (2023): such models can represent positions"),
        "zh": ("机制本身证据**强**（一个对称性定理加探针）；作为“decoder-only 胜出”的理由**弱**：真实的编码器"
               "都带位置编码，大模型也都保留了位置编码",
               "Haviv et al.（2022）：不带位置编码的因果语言模型仍有竞争力，掩码语言模型则明显落后；"
               "Kazemnejad et al.（2023）：这类模型能表示位置"),
    },
    "kv-cache": {
        "en": ("**strong**: it follows from the mask, and the arithmetic is counted; it is about cost, "
               "not about which model learns better",
               "serving systems build on it: vLLM's PagedAttention (Kwon et al., 2023) and SGLang's "
               "RadixAttention (Zheng et al., 2024) reuse KV caches across requests and turns"),
        "zh": ("**强**：它由掩码直接推出，计算量是数出来的；但它关乎代价，不关乎哪种模型学得更好",
               "推理服务系统正是建立在这一点上：vLLM 的 PagedAttention（Kwon et al., 2023）和 SGLang 的 "
               "RadixAttention（Zheng et al., 2024）跨请求、跨轮次复用 KV 缓存"),
    },
}


def load_results(verbose: bool = False) -> dict:
    """``{page: result}`` of every section's full experiment (from the cache, or computed now)."""
    from .multiturn import multiturn
    from .why_causal_vs_mlm import causal_vs_mlm
    from .why_in_context import why_in_context
    from .why_positions import why_positions
    from .why_zero_shot import why_zero_shot

    pair = causal_vs_mlm(verbose=verbose)
    return {"zero-shot": why_zero_shot(), "rank": pair, "harder-task": pair,
            "in-context": why_in_context(verbose=verbose), "positions": why_positions(verbose=verbose),
            "kv-cache": multiturn(verbose=verbose)}


def _pm(pair, scale: float = 1.0, digits: int = 2) -> str:
    return f"{scale * pair[0]:.{digits}f} ± {scale * pair[1]:.{digits}f}"


def _numbers(results: dict) -> dict:
    """The few numbers per section the closing table and the overview's statements use."""
    from . import why_harder_task, why_rank
    from .why_in_context_report import aggregate as in_context
    from .why_positions_report import aggregate as positions
    from .why_zero_shot_report import aggregate as zero_shot

    zs = zero_shot(results["zero-shot"])
    rank = why_rank.aggregate(results["rank"])
    hard = why_harder_task.aggregate(results["harder-task"])
    icl = in_context(results["in-context"])
    base = results["in-context"]["baselines"]
    pos = positions(results["positions"])
    chat = results["kv-cache"]["archs"]
    return {
        "zero-shot": {arch: zs[arch]["heldout"] for arch in ("causal", "prefix", "encdec")},
        "rank": {kind: {w: rank[kind][w]["rank_all"] for w in ("initial", "trained")}
                 for kind in ("causal", "bidirectional")},
        "rank_smallest": max(rank["causal"]["trained"]["smallest"]),
        "rank_size": results["rank"]["settings"]["train"]["seq_len"],
        "harder-task": {kind: {"loss": hard[kind]["loss"], "predicted": hard[kind]["predicted_per_step"],
                               "tokens": hard[kind]["tokens_per_step"],
                               "probe": hard[kind]["best"]["trained"]["word_position"]}
                        for kind in ("causal", "bidirectional")},
        "in-context": {**{v: icl[v]["error"][-1] for v in ("causal", "prefix")},
                       "gd": base["gd"][-1], "least_squares": base["least_squares"][-1]},
        "positions": {"r2": {kind: pos["probe"][kind]["none"]["r2"][-1] for kind in ("causal", "bidirectional")},
                      "loss": {p: pos["loss"]["causal"][p] for p in ("none", "learned", "rotary")}},
        "kv-cache": {arch: sum(chat[arch]["flops"]) / 1e9 for arch in ("causal", "prefix", "encdec")},
    }


def measured(results: dict, lang: str = "en") -> dict:
    """``{page: text}``: what each section's experiment measured, with its numbers."""
    n = _numbers(results)
    zs, rank, hard, icl, pos, chat = (n[k] for k in ("zero-shot", "rank", "harder-task", "in-context",
                                                      "positions", "kv-cache"))
    c, b = hard["causal"], hard["bidirectional"]
    r = {kind: {w: f"{rank[kind][w][0]:.0f}" for w in rank[kind]} for kind in rank}
    if lang == "zh":
        return {
            "zero-shot": f"留出任务类型的完全匹配（%）：因果 {_pm(zs['causal'], 100, 0)}，Prefix-LM "
                         f"{_pm(zs['prefix'], 100, 0)}，Encoder-Decoder {_pm(zs['encdec'], 100, 0)}",
            "rank": f"{n['rank_size']}×{n['rank_size']} 注意力矩阵的平均数值秩（容差 1e-3），初始 → 训练后：因果 {r['causal']['initial']} → "
                    f"{r['causal']['trained']}，掩码 {r['bidirectional']['initial']} → "
                    f"{r['bidirectional']['trained']}；因果矩阵 σmin/σmax ≤ {n['rank_smallest']:.0e}",
            "harder-task": f"同等计算量，每个被预测词元的留出损失（nats）：因果 {_pm(c['loss'])}，掩码 "
                           f"{_pm(b['loss'])}；每步预测 {c['predicted']} 对 {b['predicted']} 个词元；"
                           f"“词内第几个字母”探针：{_pm(c['probe'])} 对 {_pm(b['probe'])}",
            "in-context": f"k = 10 时的误差（1 = 总答 0）：因果 {_pm(icl['causal'])}，Prefix-LM "
                          f"{_pm(icl['prefix'])}；一步梯度下降 {icl['gd']:.2f}，最小二乘 {icl['least_squares']:.2f}",
            "positions": f"无位置编码，最后一层位置探针的 R²：因果 {_pm(pos['r2']['causal'])}，掩码 "
                         f"{_pm(pos['r2']['bidirectional'])}；因果模型损失：无 {_pm(pos['loss']['none'])}，"
                         f"可学习 {_pm(pos['loss']['learned'])}，RoPE {_pm(pos['loss']['rotary'])}",
            "kv-cache": f"10 轮对话的总计算量（GFLOP）：因果 {chat['causal']:.1f}，Prefix-LM {chat['prefix']:.1f}，"
                        f"Encoder-Decoder {chat['encdec']:.1f}",
        }
    return {
        "zero-shot": f"held-out task types, exact match (%): causal {_pm(zs['causal'], 100, 0)}, prefix LM "
                     f"{_pm(zs['prefix'], 100, 0)}, encoder-decoder {_pm(zs['encdec'], 100, 0)}",
        "rank": f"mean numerical rank of the {n['rank_size']}×{n['rank_size']} attention maps (tol 1e-3), initial → trained: causal "
                f"{r['causal']['initial']} → {r['causal']['trained']}, masked {r['bidirectional']['initial']} → "
                f"{r['bidirectional']['trained']}; causal σmin/σmax ≤ {n['rank_smallest']:.0e}",
        "harder-task": f"same compute, held-out loss per predicted token (nats): causal {_pm(c['loss'])}, "
                       f"masked {_pm(b['loss'])}; {c['predicted']} vs {b['predicted']} predictions per step; "
                       f"probe \"letters into the word\": {_pm(c['probe'])} vs {_pm(b['probe'])}",
        "in-context": f"error at k = 10 (1 = always answering 0): causal {_pm(icl['causal'])}, prefix LM "
                      f"{_pm(icl['prefix'])}; one GD step {icl['gd']:.2f}, least squares {icl['least_squares']:.2f}",
        "positions": f"no positions, R² of the position probe at the last layer: causal {_pm(pos['r2']['causal'])}, "
                     f"masked {_pm(pos['r2']['bidirectional'])}; causal loss: none {_pm(pos['loss']['none'])}, "
                     f"learned {_pm(pos['loss']['learned'])}, rotary {_pm(pos['loss']['rotary'])}",
        "kv-cache": f"10-turn chat, GFLOP in total: causal {chat['causal']:.1f}, prefix LM {chat['prefix']:.1f}, "
                    f"encoder-decoder {chat['encdec']:.1f}",
    }


def closing_table(results: dict, lang: str = "en") -> str:
    """The closing table in Markdown: reason | measured here | strength | literature."""
    rows = measured(results, lang)
    head = ("| 理由 | 这里测到的 | 证据强度 | 文献怎么说 |" if lang == "zh"
            else "| reason | measured here | strength of the evidence | the literature |")
    lines = [head, "|---|---|---|---|"]
    for page, zh, en in REASONS:
        strength, literature = JUDGEMENT[page][lang]
        lines.append(f"| [{zh if lang == 'zh' else en}]({page}.md) | {rows[page]} | {strength} | {literature} |")
    return "\n".join(lines)


def claims(results: dict) -> list[tuple[str, bool]]:
    """The statements the chapter's overview makes about the six experiments together."""
    n = _numbers(results)
    zs, rank, hard, icl, pos, chat = (n[k] for k in ("zero-shot", "rank", "harder-task", "in-context",
                                                      "positions", "kv-cache"))
    return [
        ("5.1: on held-out task types the encoder-decoder's mean is the highest of the three",
         zs["encdec"][0] >= max(zs["causal"][0], zs["prefix"][0])),
        ("5.2: after training the two kinds' mean numerical ranks differ by < 10% of the sequence",
         abs(rank["causal"]["trained"][0] - rank["bidirectional"]["trained"][0]) < 0.1 * n["rank_size"]),
        ("5.2: the trained causal maps are numerically singular (sigma_min/sigma_max < 1e-12)",
         n["rank_smallest"] < 1e-12),
        ("5.3: at the same compute the causal LM has the lower loss per predicted token",
         hard["causal"]["loss"][0] + hard["causal"]["loss"][1] < hard["bidirectional"]["loss"][0]
         - hard["bidirectional"]["loss"][1]),
        ("5.4: causal decoder and prefix LM tie at k = 10 (within their spreads)",
         abs(icl["causal"][0] - icl["prefix"][0]) <= icl["causal"][1] + icl["prefix"][1]),
        ("5.5: without positions, the causal model's last layer gives position R² > masked + 0.1",
         pos["r2"]["causal"][0] > pos["r2"]["bidirectional"][0] + 0.1),
        ("5.6: the prefix LM's chat takes >= 3x the causal decoder's arithmetic",
         chat["prefix"] >= 3 * chat["causal"]),
    ]
