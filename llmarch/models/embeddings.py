"""Input embeddings shared by every family: tokens (+ absolute positions) (+ token types)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn.checks import check_tensor
from ..nn.positions import LearnedPositionalEmbedding, SinusoidalPositionalEmbedding
from .config import ModelConfig
from .inputs import check_block_position_ids, check_token_ids

__all__ = ["Embeddings"]


# --8<-- [start:embeddings]
class Embeddings(nn.Module):
    """Token embedding, scaled, plus absolute positions and token types, then norm and dropout.

    What is present follows the config: learned positions (GPT, BERT) or sinusoids
    (Transformer) are added here; rotary, ALiBi and T5 positions act inside attention instead.
    ``position="learned_2d"`` is GLM's 2D positional encoding (Du et al. 2022, §2.2): two
    learned tables, one for the position and one for the position *within a blank's span*
    (``block_position_ids``, 0 outside spans), both added to the token embedding.

    Shapes: ``input_ids (batch, seq)`` -> ``(batch, seq, d_model)``.

    >>> from llmarch.models.presets import get_config
    >>> emb = Embeddings(get_config("bert-base", num_layers=1))
    >>> emb(torch.tensor([[101, 2023, 102]]), torch.arange(3)[None]).shape
    torch.Size([1, 3, 768])
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tokens = nn.Embedding(config.vocab_size, config.d_model, padding_idx=None)
        if config.position in ("learned", "learned_2d"):
            self.positions = LearnedPositionalEmbedding(config.max_positions, config.d_model)
        elif config.position == "sinusoidal":
            self.positions = SinusoidalPositionalEmbedding(config.d_model)
        else:
            self.positions = None
        # GLM's second position table (the model code calls it block_position_embeddings)
        self.block_positions = (LearnedPositionalEmbedding(config.max_positions, config.d_model)
                                if config.position == "learned_2d" else None)
        self.token_types = nn.Embedding(config.type_vocab_size, config.d_model) if config.type_vocab_size else None
        self.norm = nn.LayerNorm(config.d_model, eps=config.norm_eps) if config.embedding_norm else None
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: Tensor, position_ids: Tensor | None = None,
                token_type_ids: Tensor | None = None, *, name: str = "input_ids",
                block_position_ids: Tensor | None = None) -> Tensor:
        """Embed ``input_ids`` ``(batch, seq)``; ``name`` is what errors call them (``decoder_input_ids``).

        ``block_position_ids`` ``(batch or 1, seq)``: GLM's positions within a span
        (``position="learned_2d"`` only; default 0 everywhere, the value of ordinary text)."""
        check_token_ids(name, input_ids, self.config.vocab_size, device=self.tokens.weight.device)
        x = self.tokens(input_ids)
        if self.config.embedding_scale is not None:
            x = x * self.config.embedding_scale
        if self.positions is not None:
            if position_ids is None:
                raise ValueError(f"position_ids are required with position={self.config.position!r}, got None")
            x = x + self.positions(position_ids).to(x.dtype)
        if self.block_positions is not None:
            if block_position_ids is None:  # 0 everywhere: one row of the table, broadcast
                x = x + self.block_positions.weight[0].to(x.dtype)
            else:
                check_block_position_ids(block_position_ids, input_ids.shape, self.block_positions.num_embeddings,
                                         input_ids.device)
                x = x + self.block_positions(block_position_ids).to(x.dtype)
        elif block_position_ids is not None:
            raise ValueError("block_position_ids need a config with position='learned_2d' (GLM's 2D positions), "
                             f"got position={self.config.position!r}")
        if self.token_types is not None:
            if token_type_ids is None:
                token_type_ids = torch.zeros_like(input_ids)
            check_tensor("token_type_ids", token_type_ids)
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(f"token_type_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(token_type_ids.shape)}")
            check_token_ids("token_type_ids", token_type_ids, self.config.type_vocab_size, device=input_ids.device,
                            limit_doc="")
            x = x + self.token_types(token_type_ids)
        elif token_type_ids is not None:
            raise ValueError("token_type_ids must be None for a config with type_vocab_size=0 (no segment "
                             f"embeddings), got a tensor of shape {tuple(getattr(token_type_ids, 'shape', ()))}")
        if self.norm is not None:
            x = self.norm(x)
        return self.dropout(x)
# --8<-- [end:embeddings]
