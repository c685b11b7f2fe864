"""LRCFuse (Sensors 2026): LLRR encoders + common-feature preservation (CFPM) + a light decoder.

**A reconstruction.** Our copy of the paper lost its equations and no code is public; this follows
``docs/lrcfuse.md#lrcfuse-architecture``, which marks each reconstructed choice (⟂):

1. Two LLRR encoders, exactly LRRNet's (:class:`fusionlib.common.lrrnet.LLRREncoder`, n = 128,
   4 blocks): (L_ir, S_ir) and (L_vis, S_vis).
2. Low-rank/sparse fusion: four Conv3×3 n→F_c (one per part), then L_f = Conv(cat(L_vis', L_ir'))
   and S_f = Conv(cat(S_vis', S_ir')), Conv3×3 2F_c→F_c ⟂ (F_c channels, not LRRNet's 1).
3. CFPM: convolutional sparse coding of what the low-rank and sparse parts leave unexplained,
   with coefficient maps C (K = F_c channels) shared by two coupled kernel sets a (VIS) and b (IR)::

       min_C ½‖R_x − a∗C‖² + ½‖R_y − b∗C‖² + λ‖C‖₁,
       R_x = X − A_x∗L_vis − B_x∗S_vis,   R_y = Y − A_y∗L_ir − B_y∗S_ir          (A, B: Conv3×3 n→1 ⟂)

   unfolded for T stages from C⁽⁰⁾ = 0 (proximal gradient / ISTA):
       C ← η_θ(C − μ·[aᵀ∗(a∗C − R_x) + bᵀ∗(b∗C − R_y)])
   with per-stage a, b (Conv3×3 K→1), aᵀ, bᵀ (Conv3×3 1→K, initialised as the exact adjoints of
   a and b and then learned untied), step μ and per-channel θ ⟂. Zero padding, so that the
   initial aᵀ is the true adjoint and each analytic stage provably lowers the objective
   (:func:`cfpm_objective`, checked in the tests and in ``notebooks/11_lrcfuse_csc_cfpm.ipynb``).
4. Reconstruction: (L_f + S_f + C)/3, then three 3×3 transposed convolutions F_c→F_c→F_c/2→1
   with ReLU between ⟂.

F_c = 22 puts the trainable parameter count (:func:`count_parameters`) within 2 % of the paper's
0.18 M; the tests hold it within 10 %.
Inputs are min-max normalised grey images ``(B, 1, H, W)`` in [0, 1] (LRRNet's convention,
:func:`fusionlib.common.lrrnet.normalise`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.common.complexity import count_flops, count_parameters  # count_parameters re-exported: notebook 11
from fusionlib.common.lrrnet import LLRREncoder, ConvLayer, check_pair, soft_threshold

__all__ = ["CFPMStage", "CFPM", "LRCFuse", "cfpm_objective", "cfpm_lipschitz", "analytic_descent", "count_parameters", "flops"]


class CFPMStage(nn.Module):
    """One unfolded proximal-gradient step on the coupled CSC objective (see the module docstring).

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §1.
    """

    def __init__(self, k: int, step: float = 0.1, theta: float = 0.01):
        super().__init__()
        self.a = nn.Conv2d(k, 1, 3, padding=1)               # a: K → 1 (VIS synthesis kernels)
        self.b = nn.Conv2d(k, 1, 3, padding=1)               # b: K → 1 (IR synthesis kernels)
        self.a_t = nn.Conv2d(1, k, 3, padding=1, bias=False)  # aᵀ: 1 → K, starts as the adjoint of a
        self.b_t = nn.Conv2d(1, k, 3, padding=1, bias=False)
        self.step = nn.Parameter(torch.tensor(float(step)))   # μ
        self.theta = nn.Parameter(torch.full((1, k), float(theta)))
        self.tie_adjoints()

    @torch.no_grad()
    def tie_adjoints(self) -> None:
        """Set aᵀ, bᵀ to the exact adjoints of a∗, b∗ (zero-padded 'same' 3×3 convolutions):
        the adjoint of conv2d(w) is conv_transpose2d(w), i.e. conv2d with the kernel flipped and
        the in/out channels swapped."""
        for fwd, adj in ((self.a, self.a_t), (self.b, self.b_t)):
            adj.weight.copy_(fwd.weight.flip(-2, -1).transpose(0, 1))

    def forward(self, c: torch.Tensor, r_x: torch.Tensor, r_y: torch.Tensor) -> torch.Tensor:
        # gradient of ½‖a∗C + β_a − R_x‖² + ½‖b∗C + β_b − R_y‖² (β = the convs' biases)
        grad = self.a_t(self.a(c) - r_x) + self.b_t(self.b(c) - r_y)
        return soft_threshold(c - self.step * grad, self.theta)


def cfpm_objective(stage: CFPMStage, c: torch.Tensor, r_x: torch.Tensor, r_y: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """½‖a∗C − R_x‖² + ½‖b∗C − R_y‖² + Σ_c λ_c‖C_c‖₁ per sample, ``(B,)``, with the stage's a, b
    (biases included in the convolutions) and per-channel λ ``(1, K)``; the ISTA step with
    threshold θ = μ·λ minimises it.

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §1.
    """
    fit = 0.5 * ((stage.a(c) - r_x).square().sum((1, 2, 3)) + (stage.b(c) - r_y).square().sum((1, 2, 3)))
    return fit + (lam.view(1, -1, 1, 1) * c.abs()).sum((1, 2, 3))


@torch.no_grad()
def cfpm_lipschitz(stage: CFPMStage, shape: tuple[int, int, int, int], iters: int = 50, seed: int = 0) -> float:
    """Largest eigenvalue of aᵀa + bᵀb (the gradient's Lipschitz constant, biases aside) on inputs of
    ``shape`` (B, K, H, W), by power iteration; μ = 1/L is the analytic step size. Uses the stage's
    aᵀ, bᵀ, which are the exact adjoints until training unties them.

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §1.
    """
    def op(v):
        return stage.a_t(F.conv2d(v, stage.a.weight, padding=1)) + stage.b_t(F.conv2d(v, stage.b.weight, padding=1))
    v = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    for _ in range(iters):
        w = op(v)
        v = w / w.norm()
    return float((v * op(v)).sum())


@torch.no_grad()
def analytic_descent(stage: CFPMStage, r_x: torch.Tensor, r_y: torch.Tensor, lam: torch.Tensor,
                     stages: int, seed: int = 0) -> tuple[list[float], torch.Tensor]:
    """Make ``stage`` the analytic proximal-gradient step (tied adjoints, μ = 1/L by
    :func:`cfpm_lipschitz`, θ = μ·λ), apply it ``stages`` times from C = 0, and return the
    objective (summed over the batch) before and after every stage, and the final C.

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §1.
    """
    stage.tie_adjoints()
    k = stage.theta.shape[1]
    c = r_x.new_zeros(r_x.shape[0], k, *r_x.shape[-2:])
    step = 1.0 / cfpm_lipschitz(stage, tuple(c.shape), seed=seed)
    stage.step.fill_(step)
    stage.theta.copy_(step * lam)
    values = [cfpm_objective(stage, c, r_x, r_y, lam).sum().item()]
    for _ in range(stages):
        c = stage(c, r_x, r_y)
        values.append(cfpm_objective(stage, c, r_x, r_y, lam).sum().item())
    return values, c


class CFPM(nn.Module):
    """Common-feature preservation: residuals after the low-rank/sparse parts, then T CSC stages.

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §1.
    """

    def __init__(self, n: int = 128, k: int = 22, stages: int = 4):
        super().__init__()
        self.k = k
        self.A_x, self.B_x = ConvLayer(n, 1), ConvLayer(n, 1)  # VIS low-rank / sparse synthesis
        self.A_y, self.B_y = ConvLayer(n, 1), ConvLayer(n, 1)  # IR
        self.stages = nn.ModuleList(CFPMStage(k) for _ in range(stages))

    def forward(self, vis, ir, l_vis, s_vis, l_ir, s_ir) -> torch.Tensor:
        r_x = vis - self.A_x(l_vis) - self.B_x(s_vis)   # R_x
        r_y = ir - self.A_y(l_ir) - self.B_y(s_ir)       # R_y
        c = vis.new_zeros(vis.shape[0], self.k, *vis.shape[-2:])  # C⁽⁰⁾ = 0
        for stage in self.stages:
            c = stage(c, r_x, r_y)
        return c


class LRCFuse(nn.Module):
    """``forward(ir, vis)``: ``(B, 1, H, W)`` in [0, 1] -> dict with ``fused`` ``(B, 1, H, W)`` (unnormalised)
    and the intermediate parts (``ir_low``, ``ir_sparse``, ``vis_low``, ``vis_sparse``, ``L_f``, ``S_f``, ``C``).

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §2.
    """

    def __init__(self, n: int = 128, blocks: int = 4, fc: int = 22, cfpm_stages: int = 4, use_cfpm: bool = True):
        super().__init__()
        self.enc_ir = LLRREncoder(n, blocks)
        self.enc_vis = LLRREncoder(n, blocks)
        self.to_l_vis, self.to_s_vis = ConvLayer(n, fc), ConvLayer(n, fc)
        self.to_l_ir, self.to_s_ir = ConvLayer(n, fc), ConvLayer(n, fc)
        self.fuse_l, self.fuse_s = ConvLayer(2 * fc, fc), ConvLayer(2 * fc, fc)
        self.cfpm = CFPM(n, fc, cfpm_stages) if use_cfpm else None
        half = max(1, fc // 2)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(fc, fc, 3, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(fc, half, 3, padding=1), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(half, 1, 3, padding=1))

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        check_pair(self, ir, vis)
        l_ir, s_ir = self.enc_ir(ir)
        l_vis, s_vis = self.enc_vis(vis)
        l_f = self.fuse_l(torch.cat([self.to_l_vis(l_vis), self.to_l_ir(l_ir)], 1))
        s_f = self.fuse_s(torch.cat([self.to_s_vis(s_vis), self.to_s_ir(s_ir)], 1))
        if self.cfpm is not None:
            c = self.cfpm(vis, ir, l_vis, s_vis, l_ir, s_ir)
            merged = (l_f + s_f + c) / 3                 # "summed pixel-wise and averaged"
        else:                                            # ablation: CFPM off
            c = torch.zeros_like(l_f)
            merged = (l_f + s_f) / 2
        return {"fused": self.decoder(merged), "ir_low": l_ir, "ir_sparse": s_ir, "vis_low": l_vis,
                "vis_sparse": s_vis, "L_f": l_f, "S_f": s_f, "C": c}


def flops(model: nn.Module, height: int, width: int) -> int:
    """Floating-point operations of one forward pass on a ``(1, 1, H, W)`` pair, counted by
    ``torch.utils.flop_counter`` (a multiply-add counts as 2 FLOPs; element-wise ops are not counted).

    The count runs on a copy of the model on the ``meta`` device: shapes only, no arithmetic, so
    640×480 takes under a second on a CPU.

    Derived in ``notebooks/11_lrcfuse_csc_cfpm.ipynb`` §2.
    """
    import copy

    meta = copy.deepcopy(model).to("meta")
    x = torch.zeros(1, 1, height, width, device="meta")
    return count_flops(meta, x, x)[0]
