"""Chunked causal-LM cross-entropy: logits for 128K tokens x a large vocabulary never exist at once.

`enable_chunked_loss(model)` swaps the instance's forward for one that runs the decoder, then
computes the loss over chunks of positions; each chunk's logits are recomputed in the backward
pass (activation checkpointing), so peak memory holds one chunk of logits instead of all of them.
The model's state dict, saving and generation are untouched (without labels the original forward
runs). The loss equals transformers' own causal-LM loss: shifted labels, -100 ignored, sum divided
by `num_items_in_batch` when the Trainer passes it (correct gradient accumulation) or by the count.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

IGNORE = -100


def _chunk_loss_sum(
    h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor
) -> torch.Tensor:
    logits = F.linear(h, weight, bias).float()
    return F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="sum")


def chunked_lm_loss_sum(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_size: int = 4096,
    bias: torch.Tensor | None = None,
    shifted: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of next-token CE over unmasked positions, their count), computing logits chunk by chunk.

    `shifted`: labels already hold each position's next token (the Trainer's `shift_labels` under context
    parallelism, where a rank's shard cannot see the token after its last position)."""
    target = (labels if shifted else F.pad(labels[:, 1:], (0, 1), value=IGNORE)).reshape(-1)
    h = hidden.reshape(-1, hidden.shape[-1])
    total = hidden.new_zeros((), dtype=torch.float32)
    keep = target != IGNORE
    count = keep.sum()
    for s in range(0, h.shape[0], chunk_size):
        t = target[s : s + chunk_size]
        if not bool(keep[s : s + chunk_size].any()):
            continue  # a fully masked chunk adds nothing to the loss or the gradient
        hc = h[s : s + chunk_size]
        if torch.is_grad_enabled() and (hc.requires_grad or weight.requires_grad):
            total = total + checkpoint(_chunk_loss_sum, hc, weight, bias, t, use_reentrant=False)
        else:
            total = total + _chunk_loss_sum(hc, weight, bias, t)
    if not bool(keep.any()) and torch.is_grad_enabled() and hidden.requires_grad:
        # A fully masked batch: a zero that stays on the graph, so backward (and DDP/FSDP hooks) still run.
        total = total + hidden.sum() * 0.0 + weight.sum() * 0.0
    return total, count


def enable_chunked_loss(model: Any, chunk_size: int = 4096) -> Any:
    """Make `model(input_ids, labels=...)` compute its loss with chunked cross-entropy (returns model)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    if getattr(model.config, "final_logit_softcapping", None):
        raise ValueError("chunked loss does not support final_logit_softcapping models")
    if getattr(model, "_longkit_orig_forward", None) is not None:
        model._longkit_chunk_size = chunk_size
        return model
    orig = model.forward
    base = getattr(model, model.base_model_prefix)
    model._longkit_orig_forward = orig
    model._longkit_chunk_size = chunk_size

    def forward(
        self: Any,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        num_items_in_batch: Any = None,
        **kwargs: Any,
    ) -> Any:
        if labels is None:
            return orig(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs)
        kwargs.pop("use_cache", None)
        shift_labels = kwargs.pop("shift_labels", None)
        # use_cache=False always: transformers turns restarting position ids into per-document attention only
        # without a KV cache (with one, packed samples would attend to each other).
        out = base(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False, **kwargs
        )
        head = self.get_output_embeddings()
        total, count = chunked_lm_loss_sum(
            out.last_hidden_state,
            head.weight,
            labels if shift_labels is None else shift_labels,
            self._longkit_chunk_size,
            getattr(head, "bias", None),
            shifted=shift_labels is not None,
        )
        denom = num_items_in_batch if num_items_in_batch is not None else count.clamp(min=1)
        if isinstance(denom, torch.Tensor):
            denom = denom.to(total.device)
        return CausalLMOutputWithPast(loss=total / denom, logits=None)

    model.forward = types.MethodType(forward, model)
    model.accepts_loss_kwargs = True  # the Trainer then passes num_items_in_batch (exact grad accumulation)
    return model
