# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook: attention masks
#
# This notebook is generated from a [jupytext](https://jupytext.readthedocs.io) percent-format
# source and executed when the site is built (`allow_errors: false`: if any cell fails, the build
# fails). It draws the four attention masks with `llmarch` and shows why, with a KV cache, the
# causal mask is aligned to the bottom right. Masks are boolean tensors; `True` means "may attend".

# %%
import matplotlib.pyplot as plt
import torch

from llmarch import (causal_mask, combine_masks, cross_attention_mask, padding_mask,
                     prefix_lm_mask, to_additive_mask, unilm_mask)
from llmarch.nn.plotting import plot_mask

panels = {
    "bidirectional": unilm_mask("bidirectional", 6),
    "causal": causal_mask(6),
    "prefix-LM (prefix 3)": prefix_lm_mask(3, 6),
    "cross-attention": cross_attention_mask(torch.tensor([[1, 1, 1, 1, 0]]), 4),
}
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
for ax, (title, mask) in zip(axes, panels.items()):
    plot_mask(mask, ax, title=title)
fig.tight_layout()

# %% [markdown]
# ## KV cache and bottom-right alignment
#
# During generation the keys and values of the first 3 tokens are already in the cache and 2 new
# queries arrive. Query $i$ is position $3 + i$ of the whole sequence, so it sees the first
# $3 + i + 1$ keys: the causal mask is aligned to the **bottom right** corner of the keys, not the
# top left.

# %%
cached, new = 3, 2
step_mask = causal_mask(new, cached + new)
print(step_mask.int())
assert torch.equal(step_mask, causal_mask(cached + new)[cached:])

# %% [markdown]
# ## Combining with a padding mask
#
# Batched inference must also hide padding. `combine_masks` takes the logical AND of masks,
# broadcasting their shapes; `to_additive_mask` then turns the result into a float mask added to
# the attention scores (0, or the dtype's minimum).

# %%
mask = combine_masks(causal_mask(4), padding_mask(lengths=[4, 2]))
print(mask.shape)
print(mask[1, 0].int())
print(to_additive_mask(mask[1, 0], torch.float16))
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, b in zip(axes, range(2)):
    plot_mask(mask[b, 0], ax, title=f"batch {b}")
fig.tight_layout()
