"""Attention for serving: decoding steps of a bf16 model attend in fp32.

PyTorch's CPU SDPA kernel is ~5x slower in bf16 than in fp32 for a query of one token (116 vs 21 µs
per layer for the bundled model at 200 cached tokens, measured on the 2-core reference machine), so
upcasting the few query rows and the cached keys/values of a decoding step saves ~3 ms of a ~27 ms
step. Prompts (many query rows) attend in the model's dtype as before.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from torch import nn

SERVING_ATTENTION = "twinbot_sdpa"
FP32_MAX_QUERY = 16
"""Query rows up to which attention runs in fp32 (decoding steps; a prompt has hundreds)."""


def serving_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, in fp32 for the short queries of decoding steps."""
    if query.dtype == torch.float32 or query.shape[2] > FP32_MAX_QUERY:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask, **kwargs)
    return out.to(query.dtype), weights


AttentionInterface.register(SERVING_ATTENTION, serving_attention)
AttentionMaskInterface.register(SERVING_ATTENTION, sdpa_mask)
