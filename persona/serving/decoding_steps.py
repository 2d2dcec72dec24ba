"""The one-token steps of the decoding loop: a lean loop for Llama-family models, transformers' forward for others.

Through transformers' forward much of a step is per-call machinery (a cache grown by `torch.cat`
and upcast whole for the fp32 attention, a mask rebuilt every step), not the weights' arithmetic.
`LlamaSteps` keeps each layer's keys and values in fp32 buffers sized for the whole reply and runs
the model's own modules in a plain loop; its logits are the forward's (exactly for a lone row, to
float rounding for a padded batch), which tests check on every serving dtype and adapter mode.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn
from torch.nn import functional
from transformers import DynamicCache, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb


class Steps(Protocol):
    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """fp32 next-token logits (rows x vocab) after feeding `tokens` (one per row) at `positions` (rows x 1);
        `mask` is the attention mask of everything fed so far, these tokens included."""


class TransformersSteps:
    """Steps through the model's own forward, on the cache its prompt filled: works for any causal LM."""

    def __init__(self, model: nn.Module, cache: DynamicCache) -> None:
        self.model = model
        self.cache = cache

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=tokens[:, None], attention_mask=mask, position_ids=positions,
                         past_key_values=self.cache, use_cache=True)
        return out.logits[:, -1].float()


class LlamaSteps:
    """Steps of a Llama-family model in a plain loop over its layers, attending in fp32 over preallocated
    fp32 keys and values (`capacity` positions: the prompt's, copied from its cache, and the reply's)."""

    def __init__(self, model: LlamaForCausalLM, cache: DynamicCache, capacity: int) -> None:
        self.model = model
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        for layer in cache.layers:
            rows, heads, self.length, dim = layer.keys.shape
            keys = torch.empty(rows, heads, capacity, dim)
            values = torch.empty(rows, heads, capacity, dim)
            keys[:, :, : self.length] = layer.keys
            values[:, :, : self.length] = layer.values
            self.keys.append(keys)
            self.values.append(values)

    def __call__(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        inner = self.model.model
        rows, at = tokens.shape[0], self.length
        if at >= self.keys[0].shape[2]:
            raise ValueError(f"the cache holds {at} positions, all of them in use")
        attend = mask.bool()[:, None, None, :]  # rows x heads(1) x query(1) x keys
        hidden = inner.embed_tokens(tokens[:, None])
        cos, sin = inner.rotary_emb(hidden, positions)
        for layer, keys, values in zip(inner.layers, self.keys, self.values, strict=True):
            attention = layer.self_attn
            x = layer.input_layernorm(hidden)
            query = attention.q_proj(x).view(rows, 1, -1, attention.head_dim).transpose(1, 2)
            key = attention.k_proj(x).view(rows, 1, -1, attention.head_dim).transpose(1, 2)
            value = attention.v_proj(x).view(rows, 1, -1, attention.head_dim).transpose(1, 2)
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            keys[:, :, at] = key[:, :, 0]
            values[:, :, at] = value[:, :, 0]
            out = functional.scaled_dot_product_attention(
                query.float(), keys[:, :, : at + 1], values[:, :, : at + 1], attn_mask=attend,
                scale=attention.scaling, enable_gqa=True)
            hidden = hidden + attention.o_proj(out.transpose(1, 2).reshape(rows, 1, -1).to(hidden.dtype))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        self.length = at + 1
        return self.model.lm_head(inner.norm(hidden))[:, -1].float()


def steps_for(model: nn.Module, cache: DynamicCache, capacity: int) -> Steps:
    """The fastest steps that compute `model`'s own logits: LlamaSteps for Llama models, else its forward."""
    if isinstance(model, LlamaForCausalLM):
        return LlamaSteps(model, cache, capacity)
    return TransformersSteps(model, cache)
