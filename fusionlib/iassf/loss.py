"""IASSF's joint loss (paper Eq. 6–9; docs/iassf.md#loss, identical in paper and code).

    L = ‖I_f − max(I_ir, I_gt)‖₁ + ‖∇I_f − max(∇I_ir, ∇I_gt)‖₁ + α ‖Î_vi − I_gt‖₁,  α = 2

on RGB images in [−1, 1] (IR replicated to 3 channels), L1 mean-reduced over B×3×H×W (the code;
the paper's 1/HW only rescales by 3) and ∇ the per-channel Sobel magnitude with zero padding. The
dehazing term supervises the dehaze network only; the fusion terms reach it through the fusion net.
"""

from __future__ import annotations

import torch

from fusionlib.common.perceptual import sobel_gradient

__all__ = ["iassf_loss", "ALPHA"]

ALPHA = 2.0  # weight of the dehazing term (paper and code)


def iassf_loss(fused: torch.Tensor, dehazed: torch.Tensor, ir: torch.Tensor, clear: torch.Tensor,
               alpha: float = ALPHA) -> tuple[torch.Tensor, dict[str, float]]:
    """All four ``(B, 3, H, W)`` in [−1, 1]: the fused image, the dehazed visible image, the IR and the
    clear (haze-free) visible image. Returns the loss and its three terms.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §1.
    """
    if not fused.shape == dehazed.shape == ir.shape == clear.shape or fused.shape[1] != 3:
        raise ValueError(f"iassf_loss takes four (B, 3, H, W) images of one size, got "
                         f"{[tuple(t.shape) for t in (fused, dehazed, ir, clear)]}")
    l_int = (fused - torch.maximum(ir, clear)).abs().mean()
    l_grad = (sobel_gradient(fused) - torch.maximum(sobel_gradient(ir), sobel_gradient(clear))).abs().mean()
    l_dehaze = (dehazed - clear).abs().mean()
    total = l_int + l_grad + alpha * l_dehaze
    return total, {"l_int": float(l_int.detach()), "l_grad": float(l_grad.detach()), "l_dehaze": float(l_dehaze.detach())}
