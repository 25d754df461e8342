"""The segmentation loss: cross-entropy, optionally plus a soft Dice term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def soft_dice(logits: Tensor, target: Tensor, eps: float = 1.0) -> Tensor:
    """Mean soft Dice over the classes present in the target or the prediction (argmax).

    logits (B, C, H, W) (logits or log-probabilities), target (B, H, W) int64 class ids.
    Dice_c = (2 sum p_c t_c + eps) / (sum p_c + sum t_c + eps), summed over the whole batch.
    """
    c = logits.shape[1]
    probs = logits.float().softmax(dim=1)  # (B, C, H, W)
    onehot = F.one_hot(target, c).permute(0, 3, 1, 2).to(probs.dtype)  # (B, C, H, W)
    inter = (probs * onehot).sum(dim=(0, 2, 3))  # (C,)
    sizes = probs.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))  # (C,)
    dice = (2 * inter + eps) / (sizes + eps)  # (C,)
    present = torch.zeros(c, dtype=torch.bool, device=logits.device)
    present[target.unique()] = True
    present[logits.detach().argmax(dim=1).unique()] = True
    return dice[present].mean()


def segmentation_loss(logits: Tensor, target: Tensor, dice_weight: float = 0.0) -> Tensor:
    """Cross-entropy of logits (B, C, H, W) against class ids (B, H, W) int64, plus
    `dice_weight * (1 - soft_dice)` when dice_weight > 0. Computed in float32."""
    if logits.dim() != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"segmentation_loss: logits (B, C, H, W) and target (B, H, W) must match, got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    loss = F.cross_entropy(logits.float(), target)
    if dice_weight > 0:
        loss = loss + dice_weight * (1 - soft_dice(logits, target))
    return loss
