"""Attention in fp32 for serving and scoring, whatever the dtype of the rest of the model (bf16, int8).

PyTorch's CPU attention kernels are several times slower in bf16 than in fp32 for a decoding step's
one-token query, so queries, keys and values are upcast (autocast off, or it would cast them back)
and the output returns in the caller's dtype. Training uses transformers' eager attention instead
(persona.training.lora.TRAINING_ATTENTION), where this kernel's backward pass is the slow part.
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
