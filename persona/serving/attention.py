"""Attention in fp32 for serving and scoring, whatever the dtype of the rest of the model (bf16, int8).

PyTorch's CPU SDPA kernels are slow in bf16 for the one-token query of a decoding step, measured on
the 2-core reference machine: ~5x slower than fp32 (116 vs 21 µs per layer of the bundled model at
200 cached tokens: ~3 ms of a ~27 ms step). Over a prompt, forward only, the two are even. So
queries, keys and values are upcast (autocast off, or it would cast them back down) and the output
returns in the caller's dtype. Training switches to transformers' eager attention instead
(persona.training.lora.TRAINING_ATTENTION): SDPA's backward pass is the slow part there.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
from torch import nn

FP32_ATTENTION = "twinbot_fp32_sdpa"


def fp32_attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                   attention_mask: torch.Tensor | None, **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, computed in fp32."""
    with torch.autocast(query.device.type, enabled=False):
        out, weights = sdpa_attention_forward(module, query.float(), key.float(), value.float(), attention_mask,
                                              **kwargs)
    return out.to(query.dtype), weights


AttentionInterface.register(FP32_ATTENTION, fp32_attention)
AttentionMaskInterface.register(FP32_ATTENTION, sdpa_mask)
