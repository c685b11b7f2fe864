"""Classical fusion baselines that anchor every paper's table (``notebooks/01_fusion_metrics.ipynb``).

All fuse **one channel**: ``ir`` ``(B, 1, H, W)`` and ``y`` ``(B, 1, H, W)`` (the visible Y), float
in [0, 1], and return the fused Y ``(B, 1, H, W)`` in [0, 1]; recolour with
:func:`fusionlib.io.write_fused`; :func:`fusionlib.common.rgb.fuse_rgb` wraps any of them for ``(ir, vis RGB)`` input.

- :func:`average`: (IR + Y)/2.
- :func:`max_abs`: per pixel the source of larger magnitude (for non-negative intensities, the maximum).
- :func:`laplacian_pyramid`: Burt & Adelson (1983) pyramid, max-absolute details, averaged base.
- :func:`gff`: guided-filtering fusion, Li, Kang & Hu (IEEE TIP 2013).
- :func:`dehaze_first`: dark-channel-prior dehazing (He et al.) then any RGB fuser, for hazy sets.
"""

from __future__ import annotations

from typing import Callable

import kornia
import torch
import torch.nn.functional as F

from fusionlib.data.haze import dehaze_dark_channel, guided_filter

__all__ = ["average", "max_abs", "laplacian_pyramid", "gff", "dehaze_first", "BASELINES"]


def _check(ir: torch.Tensor, y: torch.Tensor) -> None:
    for name, t in (("ir", ir), ("y", y)):
        if not torch.is_tensor(t) or not t.is_floating_point() or t.ndim != 4 or t.shape[1] != 1:
            raise ValueError(f"{name} must be a float tensor (B, 1, H, W) in [0, 1], got "
                             f"{tuple(getattr(t, 'shape', ()))} {getattr(t, 'dtype', type(t).__name__)}")
    if ir.shape != y.shape:
        raise ValueError(f"ir {tuple(ir.shape)} and y {tuple(y.shape)} differ in shape")


def average(ir: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F = (IR + Y)/2."""
    _check(ir, y)
    return (ir + y) / 2


def max_abs(ir: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """F = the source with the larger |value| at each pixel (the maximum, for intensities ≥ 0)."""
    _check(ir, y)
    return torch.where(ir.abs() >= y.abs(), ir, y)


def laplacian_pyramid(ir: torch.Tensor, y: torch.Tensor, levels: int = 4) -> torch.Tensor:
    """Laplacian-pyramid fusion: detail bands take the coefficient of larger magnitude, the coarsest
    Gaussian level is averaged, then the pyramid is collapsed (kornia's 5×5 Gaussian pyramid)."""
    _check(ir, y)
    if min(ir.shape[-2:]) < 4:  # kornia's pyrdown reflects a 5×5 kernel: it needs 4 px
        raise ValueError(f"laplacian_pyramid needs images of at least 4×4 pixels, got {tuple(ir.shape[-2:])}")
    levels = max(1, min(levels, min(ir.shape[-2:]).bit_length() - 4))  # coarsest level ≥ ~8 px

    def up(x, like):  # pyrup, or bilinear where odd sizes make pyrup miss the finer level's size
        u = kornia.geometry.transform.pyrup(x)
        return u if u.shape[-2:] == like.shape[-2:] else F.interpolate(x, size=like.shape[-2:], mode="bilinear",
                                                                       align_corners=False)

    def pyramid(x):
        gauss = [x]
        for _ in range(levels):
            gauss.append(kornia.geometry.transform.pyrdown(gauss[-1]))
        return [g - up(n, g) for g, n in zip(gauss[:-1], gauss[1:])], gauss[-1]

    (da, base_a), (db, base_b) = pyramid(ir), pyramid(y)
    out = (base_a + base_b) / 2
    for a, b in zip(reversed(da), reversed(db)):
        out = up(out, a) + torch.where(a.abs() >= b.abs(), a, b)
    return out.clamp(0, 1)


def gff(ir: torch.Tensor, y: torch.Tensor, r1: int = 45, eps1: float = 0.3, r2: int = 7, eps2: float = 1e-6) -> torch.Tensor:
    """Guided-filtering fusion (Li, Kang & Hu 2013, Eqs. 1–8).

    Two-scale split: base B = 31×31 mean filter, detail D = I − B. Saliency S = Gaussian(11×11, σ=5)
    of |Laplacian(I)|; binary weights P = [S is the largest]; weights refined by guided filters with
    the source as guide (base: r1 = 45, ε1 = 0.3; detail: r2 = 7, ε2 = 1e-6, the paper's defaults),
    normalised to sum to one; F = Σ W_B·B + Σ W_D·D.
    """
    _check(ir, y)
    sources = torch.cat([ir, y], 1)                                       # (B, 2, H, W)
    base = kornia.filters.box_blur(sources, (31, 31), border_type="replicate")
    detail = sources - base
    lap = kornia.filters.laplacian(sources, 3, border_type="replicate", normalized=False)
    saliency = kornia.filters.gaussian_blur2d(lap.abs(), (11, 11), (5.0, 5.0), border_type="replicate")
    p = (saliency == saliency.amax(1, keepdim=True)).to(sources)
    w_base = torch.cat([guided_filter(sources[:, i:i + 1], p[:, i:i + 1], r1, eps1) for i in range(2)], 1)
    w_det = torch.cat([guided_filter(sources[:, i:i + 1], p[:, i:i + 1], r2, eps2) for i in range(2)], 1)
    w_base = w_base.clamp_min(0) / w_base.clamp_min(0).sum(1, keepdim=True).clamp_min(1e-8)
    w_det = w_det.clamp_min(0) / w_det.clamp_min(0).sum(1, keepdim=True).clamp_min(1e-8)
    return ((w_base * base).sum(1, keepdim=True) + (w_det * detail).sum(1, keepdim=True)).clamp(0, 1)


BASELINES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "average": average, "max_abs": max_abs, "laplacian_pyramid": laplacian_pyramid, "gff": gff}


def dehaze_first(rgb_fuser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Two-stage baseline for hazy VIS: dark-channel-prior dehazing (:func:`fusionlib.data.haze.dehaze_dark_channel`),
    then ``rgb_fuser(ir, vis RGB) -> RGB`` (any fusion method, e.g. LRRNet). Takes ``(ir, hazy vis RGB)``."""
    def run(ir: torch.Tensor, hazy: torch.Tensor) -> torch.Tensor:
        return rgb_fuser(ir, dehaze_dark_channel(hazy)[0])
    run.__name__ = f"dcp_then_{getattr(rgb_fuser, '__name__', 'fuser')}"
    return run
