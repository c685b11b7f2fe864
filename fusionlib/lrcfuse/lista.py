"""ISTA and its unfolded, learnable form LISTA (Gregor & LeCun 2010): the idea behind LLRR blocks.

Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb``. For sparse coding
min_x ½‖y − Dx‖² + λ‖x‖₁ with D ``(m, n)`` and L ≥ ‖D‖₂² (the gradient's Lipschitz constant), ISTA is

    x_{k+1} = η_{λ/L}(x_k + (1/L)·Dᵀ(y − D x_k)) = η_θ(W_e y + S x_k),   W_e = Dᵀ/L, S = I − DᵀD/L, θ = λ/L.

LISTA keeps that form for K steps but learns W_e, S and θ. LRRNet's LLRR block is the same update
written with convolutions: Z_k = η_θ(λ_z·Z_{k−1} + W_dt ∗ (X − W_d ∗ Z_{k−1})), i.e. S = λ_z·I − W_dt·W_d
(with λ_z = 1, W_d = D and W_dt = Dᵀ/L it is exactly ISTA; :mod:`fusionlib.common.lrrnet`).
Vectors are batched as rows: y ``(B, m)``, x ``(B, n)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from fusionlib.common.lrrnet import LLRRBlock, soft_threshold

__all__ = ["lipschitz", "ista", "lasso_objective", "LISTA", "llrr_block_as_ista"]


def lipschitz(D: torch.Tensor) -> float:
    """L = ‖D‖₂² = largest eigenvalue of DᵀD.

    Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb`` §2.
    """
    return float(torch.linalg.matrix_norm(D, ord=2) ** 2)


def lasso_objective(D: torch.Tensor, y: torch.Tensor, x: torch.Tensor, lam: float) -> torch.Tensor:
    """½‖y − Dx‖² + λ‖x‖₁ per row, ``(B,)``.

    Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb`` §2.
    """
    return 0.5 * (y - x @ D.T).square().sum(1) + lam * x.abs().sum(1)


def ista(D: torch.Tensor, y: torch.Tensor, lam: float, iters: int, x0: torch.Tensor | None = None,
         return_all: bool = False):
    """``iters`` ISTA steps from x0 (default 0); returns x ``(B, n)`` or the list of all iterates.

    Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb`` §2.
    """
    L = lipschitz(D)
    x = torch.zeros(y.shape[0], D.shape[1], dtype=y.dtype) if x0 is None else x0
    xs = [x]
    for _ in range(iters):
        x = soft_threshold(x + (y - x @ D.T) @ D / L, lam / L)
        xs.append(x)
    return xs if return_all else x


class LISTA(nn.Module):
    """K unfolded steps x ← η_θ(W_e y + S x) from x = 0 with learnable W_e ``(n, m)``, S ``(n, n)``, θ
    (shared by the steps, as LRRNet shares θ). ``LISTA.from_dictionary`` starts at exactly ISTA.

    Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb`` §2–3.
    """

    def __init__(self, m: int, n: int, steps: int):
        super().__init__()
        self.steps = steps
        self.W_e = nn.Parameter(torch.zeros(n, m))
        self.S = nn.Parameter(torch.zeros(n, n))
        self.theta = nn.Parameter(torch.zeros(n))

    @classmethod
    def from_dictionary(cls, D: torch.Tensor, lam: float, steps: int) -> "LISTA":
        """W_e = Dᵀ/L, S = I − DᵀD/L, θ = λ/L: the network computes ISTA's first ``steps`` iterates."""
        m, n = D.shape
        net = cls(m, n, steps).to(D.dtype)
        L = lipschitz(D)
        with torch.no_grad():
            net.W_e.copy_(D.T / L)
            net.S.copy_(torch.eye(n, dtype=D.dtype) - D.T @ D / L)
            net.theta.fill_(lam / L)
        return net

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b = y @ self.W_e.T
        x = soft_threshold(b, self.theta)  # first step from x = 0
        for _ in range(self.steps - 1):
            x = soft_threshold(b + x @ self.S.T, self.theta)
        return x


def llrr_block_as_ista(D: torch.Tensor, lam: float):
    """An LLRR block with 1×1 operators set to one ISTA step for dictionary D ``(1, n)``:
    W_d = D, W_dt = Dᵀ/L, no biases; returns ``(block, theta (1, n), lam_z = 1)`` so that
    ``block(y, z, theta, lam_z)`` equals ``ista(D, y, lam, 1, x0=z)`` (y, z as ``(B, ·, 1, 1)``).

    Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb`` §4.
    """
    L = lipschitz(D)
    n = D.shape[1]
    block = LLRRBlock(n2=n, k=1).to(D.dtype)
    with torch.no_grad():
        block.conv_Wdz.conv2d.weight.copy_(D.view(1, n, 1, 1))
        block.conv_Wdz.conv2d.bias.zero_()
        block.conv_Wdtz.conv2d.weight.copy_((D.T / L).view(n, 1, 1, 1))
        block.conv_Wdtz.conv2d.bias.zero_()
    return block, torch.full((1, n), lam / L, dtype=D.dtype), torch.tensor(1.0, dtype=D.dtype)
