"""Haze: the atmospheric scattering model, seeded synthesis, the dark-channel prior, a guided filter.

Derived in ``notebooks/00_data_and_conventions.ipynb``, "Haze". The model (Koschmieder; He et
al., CVPR 2009, Eq. 1) for a clear image J, transmission t and atmospheric light A::

    I(x) = J(x) · t(x) + A · (1 − t(x))

IASSF releases hazy MSRS test images but no synthesis script. The recipe below is the one
``docs/iassf.md#haze-synthesis`` fitted to those images: one grey A per
image, A ~ U(0.73, 0.99); a smooth, edge-independent t(x) = clip(t̄·(1 + s·ψ(x)), 0.05, 1) with
t̄ ~ U(0.15, 0.5), s ~ U(0.2, 0.5) and ψ a smooth field in [−1, 1] (a radial ramp around a random
centre, or low-frequency noise). :func:`fit_scattering` re-estimates (A, t) from a hazy/clear pair,
so the notebook can check the recipe against the released images.

All images are float tensors in [0, 1]: RGB ``(B, 3, H, W)``, maps ``(B, 1, H, W)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import kornia
import numpy as np
import torch
import torch.nn.functional as F

from fusionlib.data.fields import smooth_field

__all__ = ["Haze", "scatter", "transmission_field", "synthesize_haze", "dark_channel",
           "estimate_atmospheric_light", "estimate_transmission", "guided_filter",
           "dehaze_dark_channel", "fit_scattering"]

# Ranges fitted to IASSF's released hazy MSRS test set (docs/iassf.md#haze-synthesis).
A_RANGE = (0.73, 0.99)
T_MEAN_RANGE = (0.15, 0.5)
SPREAD_RANGE = (0.2, 0.5)
T_MIN = 0.05


def _check(x: torch.Tensor, name: str, channels: int | None = 3) -> None:
    if not torch.is_tensor(x) or not x.is_floating_point() or x.ndim != 4 or \
            (channels is not None and x.shape[1] != channels):
        want = f"(B, {channels}, H, W)" if channels else "(B, C, H, W)"
        raise ValueError(f"{name} must be a float tensor {want} in [0, 1], got "
                         f"{tuple(getattr(x, 'shape', ()))} {getattr(x, 'dtype', type(x).__name__)}")


@dataclass
class Haze:
    """A synthesised hazy batch: ``hazy`` ``(B, 3, H, W)``, ``t`` ``(B, 1, H, W)``, ``A`` ``(B, 1, 1, 1)``,
    and the drawn parameters ``t_mean``, ``spread`` ``(B,)``."""
    hazy: torch.Tensor
    t: torch.Tensor
    A: torch.Tensor
    t_mean: torch.Tensor
    spread: torch.Tensor


def scatter(clear: torch.Tensor, t: torch.Tensor, A: torch.Tensor | float) -> torch.Tensor:
    """I = J·t + A·(1 − t) (He et al. 2009, Eq. 1). ``t`` broadcasts over channels; t = 1 returns J."""
    return clear * t + A * (1 - t)


def transmission_field(h: int, w: int, t_mean: float, spread: float, rng: np.random.Generator,
                       kind: Literal["radial", "noise"] = "radial") -> torch.Tensor:
    """t(x) = clip(t̄·(1 + s·ψ(x)), 0.05, 1), ``(H, W)`` float32, ψ in [−1, 1] smooth.

    ``radial``: ψ is a ramp in the distance from a random centre (denser or thinner haze away
    from it, sign drawn at random); ``noise``: a low-frequency random field (std h/4 pixels).
    """
    if kind == "radial":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = np.hypot(yy - cy, xx - cx)
        psi = (2 * r / r.max() - 1) * rng.choice([-1.0, 1.0])
    elif kind == "noise":
        psi = smooth_field(rng, h, w, sigma=h / 4)
    else:
        raise ValueError(f"unknown transmission field {kind!r}: use 'radial' or 'noise'")
    return torch.from_numpy(np.clip(t_mean * (1 + spread * psi), T_MIN, 1.0).astype(np.float32))


def synthesize_haze(clear: torch.Tensor, *, seed: int, A: float | None = None, t_mean: float | None = None,
                    spread: float | None = None, field: Literal["radial", "noise"] = "radial") -> Haze:
    """Add seeded haze to clear RGB images ``(B, 3, H, W)`` in [0, 1] with the fitted recipe.

    Parameters left as ``None`` are drawn per image from ``numpy.random.default_rng(seed)``
    (A ~ U(0.73, 0.99), t̄ ~ U(0.15, 0.5), s ~ U(0.2, 0.5)); give them to fix them.
    """
    _check(clear, "clear")
    rng = np.random.default_rng(seed)
    b, _, h, w = clear.shape
    As, ts, means, spreads = [], [], [], []
    for _ in range(b):  # a handful of scalars per image; the maps themselves are vectorised
        a = A if A is not None else rng.uniform(*A_RANGE)
        m = t_mean if t_mean is not None else rng.uniform(*T_MEAN_RANGE)
        s = spread if spread is not None else rng.uniform(*SPREAD_RANGE)
        ts.append(transmission_field(h, w, m, s, rng, field))
        As.append(a), means.append(m), spreads.append(s)
    t = torch.stack(ts)[:, None].to(clear)
    A_t = torch.tensor(As, dtype=clear.dtype, device=clear.device).view(b, 1, 1, 1)
    hazy = scatter(clear, t, A_t).clamp(0, 1)
    return Haze(hazy=hazy, t=t, A=A_t, t_mean=torch.tensor(means), spread=torch.tensor(spreads))


def dark_channel(img: torch.Tensor, patch: int = 15) -> torch.Tensor:
    """Dark channel min_{y∈Ω(x)} min_c I_c(y) (He et al. 2009, Eq. 5), ``(B, 1, H, W)``.

    ``patch`` is the side of the square window Ω (odd; He et al. use 15). Windows are cut at the
    border (padding never wins the minimum).
    """
    _check(img, "img", channels=None)
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"patch must be a positive odd integer, got {patch}")
    per_pixel = img.amin(dim=1, keepdim=True)
    return -F.max_pool2d(-per_pixel, patch, stride=1, padding=patch // 2)


def estimate_atmospheric_light(img: torch.Tensor, patch: int = 15, top_fraction: float = 0.001) -> torch.Tensor:
    """A per image, ``(B, 3, 1, 1)``: among the brightest ``top_fraction`` of dark-channel pixels, the
    colour of the one with the highest intensity in I (He et al. 2009, Sec. 4.4)."""
    _check(img, "img")
    b, c, h, w = img.shape
    dark = dark_channel(img, patch).flatten(1)                    # (B, HW)
    k = max(1, int(round(top_fraction * h * w)))
    idx = dark.topk(k, dim=1).indices                             # (B, k)
    pixels = img.flatten(2).gather(2, idx[:, None].expand(b, c, k))  # (B, 3, k)
    best = pixels.sum(1).argmax(1)                                # brightest of them
    return pixels[torch.arange(b), :, best].view(b, c, 1, 1)


def estimate_transmission(img: torch.Tensor, A: torch.Tensor, omega: float = 0.95, patch: int = 15) -> torch.Tensor:
    """t̃(x) = 1 − ω · dark(I / A) (He et al. 2009, Eq. 12), ``(B, 1, H, W)``; ω keeps a little haze."""
    _check(img, "img")
    return 1 - omega * dark_channel(img / A.clamp_min(1e-6), patch)


def guided_filter(guide: torch.Tensor, src: torch.Tensor, radius: int = 30, eps: float = 1e-3) -> torch.Tensor:
    """Edge-preserving guided filter (He, Sun, Tang 2010/2013) via ``kornia.filters.guided_blur``.

    ``guide`` ``(B, 1 or C, H, W)``, ``src`` ``(B, C', H, W)``; window side 2·radius + 1, reflect border.
    """
    _check(guide, "guide", channels=None)
    _check(src, "src", channels=None)
    if guide.shape[-2:] != src.shape[-2:]:
        raise ValueError(f"guide {tuple(guide.shape)} and src {tuple(src.shape)} differ in size")
    size = 2 * radius + 1
    if size > min(src.shape[-2:]):  # reflect padding needs the window inside the image
        radius = (min(src.shape[-2:]) - 1) // 2
        size = 2 * radius + 1
    return kornia.filters.guided_blur(guide, src, size, eps, separable=True)  # separable box sums: O(1) in radius


def dehaze_dark_channel(hazy: torch.Tensor, patch: int = 15, omega: float = 0.95, t0: float = 0.1,
                        radius: int = 30, eps: float = 1e-3, refine: bool = True):
    """Dark-channel-prior dehazing (He et al. 2009/2011) with guided-filter refinement of t.

    Returns ``(J, t, A)``: the recovered radiance J = (I − A) / max(t, t0) + A clamped to [0, 1]
    ``(B, 3, H, W)``, the transmission ``(B, 1, H, W)`` and A ``(B, 3, 1, 1)``.
    """
    A = estimate_atmospheric_light(hazy, patch)
    t = estimate_transmission(hazy, A, omega, patch)
    if refine:  # the guide is the grey hazy image, as in the guided-filter paper's dehazing example
        t = guided_filter(hazy.mean(1, keepdim=True), t, radius, eps)
    J = (hazy - A) / t.clamp_min(t0) + A
    return J.clamp(0, 1), t.clamp(0, 1), A


def fit_scattering(hazy: torch.Tensor, clear: torch.Tensor, A_min: float = 0.5, A_max: float = 1.0):
    """Fit I = J·t + A(1 − t) to a hazy/clear pair: one grey A per image, a per-pixel t.

    For a given A the least-squares t over the three channels is
    t = Σ_c (I_c − A)(J_c − A) / Σ_c (J_c − A)²; A is then chosen on a grid (step 0.02, refined to
    0.001) to minimise the mean squared residual. Pixels where Σ_c (J_c − A)² < 1e-4 (J ≈ A: t is
    not identifiable) are NaN in the returned t.

    Returns:
        ``(A (B,), t (B, 1, H, W), rmse (B,))``.
    """
    _check(hazy, "hazy")
    _check(clear, "clear")
    if hazy.shape != clear.shape:
        raise ValueError(f"hazy {tuple(hazy.shape)} and clear {tuple(clear.shape)} differ in shape")
    hazy, clear = hazy.double(), clear.double()

    def solve(a: torch.Tensor):  # a: (B,) -> t (B,1,H,W), residual (B,)
        a = a.view(-1, 1, 1, 1)
        num = ((hazy - a) * (clear - a)).sum(1, keepdim=True)
        den = ((clear - a) ** 2).sum(1, keepdim=True)
        t = (num / den.clamp_min(1e-12)).clamp(0, 1)
        res = ((hazy - scatter(clear, t, a)) ** 2).mean((1, 2, 3))
        return t.masked_fill(den < 1e-4, float("nan")), res

    b = hazy.shape[0]
    best = torch.full((b,), float("nan"), dtype=torch.float64, device=hazy.device)
    for grid in ("coarse", "fine"):
        if grid == "coarse":
            candidates = torch.arange(A_min, A_max + 1e-9, 0.02, dtype=torch.float64, device=hazy.device)
            cand = candidates.expand(b, -1)
        else:
            offsets = torch.arange(-0.02, 0.02 + 1e-9, 0.001, dtype=torch.float64, device=hazy.device)
            cand = (best[:, None] + offsets).clamp(A_min, A_max)
        residuals = torch.stack([solve(cand[:, j])[1] for j in range(cand.shape[1])], 1)  # (B, G)
        best = cand.gather(1, residuals.argmin(1, keepdim=True))[:, 0]
    t, res = solve(best)
    return best.float(), t.float(), res.sqrt().float()
