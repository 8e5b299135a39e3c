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
# # 笔记本：注意力掩码
#
# 这个笔记本由 [jupytext](https://jupytext.readthedocs.io) 的 percent 格式源文件生成，
# 在构建网站时执行（`allow_errors: false`：任何一个单元格出错，构建就失败）。
# 它用 `llmarch` 画出四种注意力掩码，并演示带 KV 缓存时因果掩码为什么要“右下对齐”。
# 掩码是布尔张量，`True` 表示可以注意。

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
# ## KV 缓存与右下对齐
#
# 生成时，前面 3 个词元的键和值已经在缓存里，新来 2 个查询。查询 $i$ 是整个序列中的第 $3 + i$ 个位置，
# 所以它能看到前 $3 + i + 1$ 个键：因果掩码要和键的**右下角**对齐，而不是左上角。

# %%
cached, new = 3, 2
step_mask = causal_mask(new, cached + new)
print(step_mask.int())
assert torch.equal(step_mask, causal_mask(cached + new)[cached:])

# %% [markdown]
# ## 与填充掩码组合
#
# 批量推理时还要屏蔽填充位。`combine_masks` 对掩码做逻辑与，并按广播规则对齐形状；
# `to_additive_mask` 再把它变成加到注意力分数上的浮点掩码（0 或该数据类型的最小值）。

# %%
mask = combine_masks(causal_mask(4), padding_mask(lengths=[4, 2]))
print(mask.shape)
print(mask[1, 0].int())
print(to_additive_mask(mask[1, 0], torch.float16))
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, b in zip(axes, range(2)):
    plot_mask(mask[b, 0], ax, title=f"batch {b}")
fig.tight_layout()
