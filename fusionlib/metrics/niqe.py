"""NIQE (Mittal, Soundararajan, Bovik 2013) following the LIVE MATLAB reference, and PI (PIRM 2018).

Derived in ``notebooks/01_fusion_metrics.ipynb``, "No-reference quality". NIQE ↓: the grey image
on 0–255 is cropped to a multiple of 96; MSCN coefficients (7×7 Gaussian, σ = 7/6, replicate
borders) give 18 features per 96×96 block (AGGD shape and mean scale (β_l + β_r)/2 of the MSCN
values; AGGD shape, mean and β_l, β_r of the 4 neighbour products, circularly shifted inside the block)
at 2 scales (the second after MATLAB-style bicubic ×½ with antialiasing, 48×48 blocks); an MVG
fitted to the image's blocks is compared with the pristine model:
sqrt((μ_p − μ_d)ᵀ ((Σ_p + Σ_d)/2)⁺ (μ_p − μ_d)).

The pristine model is the official LIVE ``modelparameters.mat`` (shipped in this package as
``data/niqe_pris_params.npz``, from BasicSR; notice in ``data/niqe_model_NOTICE.txt``); pass
``params_path`` or set ``$FUSIONLIB_NIQE_PARAMS`` to use another copy.

PI = ½[(10 − Ma) + NIQE] needs Ma et al.'s NRQM model, which is not available offline here; it is
computed only when the caller supplies the Ma score function.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from fusionlib.metrics.functional import filter2, gaussian_kernel

__all__ = ["DEFAULT_PARAMS", "load_pristine", "imresize_half", "niqe", "pi"]

DEFAULT_PARAMS = Path(__file__).parent / "data" / "niqe_pris_params.npz"
_GAM = torch.arange(200, 10001, dtype=torch.float64) / 1000  # 0.2:0.001:10, the reference's lookup grid


@lru_cache(maxsize=4)
def load_pristine(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(μ_p (36,), Σ_p (36, 36)) from an ``.npz`` (``mu_pris_param``, ``cov_pris_param``) or ``.mat``
    (``pop_mu``/``pop_cov`` or ``mu_prisparam``/``cov_prisparam``)."""
    path = Path(path or os.environ.get("FUSIONLIB_NIQE_PARAMS") or DEFAULT_PARAMS)
    if not path.is_file():
        raise FileNotFoundError(f"NIQE pristine model not found: {path} (the official LIVE modelparameters.mat "
                                "values; BasicSR ships them as basicsr/metrics/niqe_pris_params.npz)")
    if path.suffix == ".npz":
        d = np.load(path)
        mu, cov = d["mu_pris_param"], d["cov_pris_param"]
    else:
        from scipy.io import loadmat
        d = loadmat(path)
        key = "pop_mu" if "pop_mu" in d else "mu_prisparam"
        mu, cov = d[key], d[key.replace("mu", "cov")]
    mu, cov = np.asarray(mu, np.float64).reshape(-1), np.asarray(cov, np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected a 36-D mean and a 36×36 covariance, got {mu.shape} and {cov.shape}")
    return mu, cov


def _cubic(x: torch.Tensor) -> torch.Tensor:
    ax = x.abs()
    return ((1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1)
            + (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _resize_matrix(n_in: int, device) -> torch.Tensor:
    """The (⌈n/2⌉ × n) weight matrix of MATLAB ``imresize(·, 0.5)`` (bicubic, antialiased, symmetric borders)."""
    scale, width = 0.5, 4.0 / 0.5
    n_out = math.ceil(n_in * scale)
    x = torch.arange(1, n_out + 1, dtype=torch.float64, device=device)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64, device=device)[None, :]  # 1-based
    w = scale * _cubic(scale * (u[:, None] - idx))
    w = w / w.sum(1, keepdim=True)
    aux = torch.cat([torch.arange(n_in, device=device), torch.arange(n_in - 1, -1, -1, device=device)])
    src = aux[torch.remainder(idx.long() - 1, 2 * n_in)]
    mat = torch.zeros(n_out, n_in, dtype=torch.float64, device=device)
    mat.scatter_add_(1, src, w)
    return mat


def imresize_half(img: torch.Tensor) -> torch.Tensor:
    """MATLAB ``imresize(img, 0.5)`` (bicubic with antialiasing) of ``(H, W)`` float64, unrounded."""
    h, w = img.shape
    return _resize_matrix(h, img.device) @ img @ _resize_matrix(w, img.device).T


def _aggd(vec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric generalised Gaussian fit per row of ``vec`` (N, n): (α, β_l, β_r), by moment
    matching on the reference's grid α ∈ 0.2:0.001:10 (LIVE ``estimateaggdparam``)."""
    gam = _GAM.to(vec.device)
    r_gam = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    neg, pos = vec < 0, vec > 0
    left = torch.sqrt((vec ** 2 * neg).sum(1) / neg.sum(1))
    right = torch.sqrt((vec ** 2 * pos).sum(1) / pos.sum(1))
    gh = left / right
    rhat = vec.abs().mean(1) ** 2 / (vec ** 2).mean(1)
    rnorm = rhat * (gh ** 3 + 1) * (gh + 1) / (gh ** 2 + 1) ** 2
    alpha = gam[((r_gam[None] - rnorm[:, None]) ** 2).argmin(1)]
    scale = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))  # sqrt(Γ(1/α)/Γ(3/α))
    return alpha, left * scale, right * scale


def _block_features(mscn: torch.Tensor, bs: int) -> torch.Tensor:
    """18 features per bs×bs block of an MSCN map ``(H, W)`` (H, W multiples of bs) -> (n_blocks, 18)."""
    h, w = mscn.shape
    blocks = mscn.reshape(h // bs, bs, w // bs, bs).permute(0, 2, 1, 3).reshape(-1, bs, bs)  # order is irrelevant to the MVG
    flat = blocks.reshape(blocks.shape[0], -1)
    alpha, bl, br = _aggd(flat)
    feats = [alpha, (bl + br) / 2]  # shape and scale of the MSCN coefficients
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):  # horizontal, vertical, two diagonal neighbours
        pair = (blocks * torch.roll(blocks, shift, dims=(1, 2))).reshape(blocks.shape[0], -1)
        alpha, bl, br = _aggd(pair)
        mean = (br - bl) * torch.exp(torch.lgamma(2 / alpha) - torch.lgamma(1 / alpha))
        feats += [alpha, mean, bl, br]
    return torch.stack(feats, 1)


def niqe(gray: torch.Tensor, params_path: str | None = None) -> float:
    """NIQE ↓ of one grey image ``(H, W)`` float on 0–255 (H, W ≥ 96); range [0, ∞), lower is more natural.

    Mittal, Soundararajan & Bovik 2013 (LIVE reference); used on the grey fused image in every convention.
    """
    if gray.ndim != 2 or min(gray.shape) < 96:
        raise ValueError(f"NIQE needs one grey image of at least 96×96, got shape {tuple(gray.shape)}")
    mu_p, cov_p = load_pristine(None if params_path is None else str(params_path))
    im = gray.double()
    h, w = (gray.shape[0] // 96) * 96, (gray.shape[1] // 96) * 96
    im = im[:h, :w]
    window = gaussian_kernel(7, 7 / 6).to(im)
    feats = []
    for scale in (1, 2):
        mu = filter2(im[None], window, "replicate")[0]
        sigma = torch.sqrt((filter2((im * im)[None], window, "replicate")[0] - mu * mu).abs())
        mscn = (im - mu) / (sigma + 1)
        feats.append(_block_features(mscn, 96 // scale))
        im = imresize_half(im)
    dist = torch.cat(feats, 1)  # (n_blocks, 36)
    mu_d = torch.nanmean(dist, 0)
    complete = dist[~dist.isnan().any(1)]
    cov_d = torch.cov(complete.T) if complete.shape[0] > 1 else torch.zeros(36, 36, dtype=torch.float64, device=dist.device)
    mu_p_t = torch.from_numpy(mu_p).to(dist)
    cov_p_t = torch.from_numpy(cov_p).to(dist)
    d = (mu_p_t - mu_d)[None]
    return float(torch.sqrt(d @ torch.linalg.pinv((cov_p_t + cov_d) / 2) @ d.T))


def pi(y: torch.Tensor, ma_score: Callable[[torch.Tensor], float] | None = None,
       params_path: str | None = None) -> float:
    """PI ↓ = ½[(10 − Ma) + NIQE] on the Y channel ``(H, W)`` 0–255 with 4 border pixels shaved.

    Ma et al.'s NRQM score needs their trained model (``NRQM_model.mat``), which no offline package
    carries; pass ``ma_score`` (a function of the shaved Y plane returning Ma's score, e.g. from
    pyiqa with its weights) to compute PI. No other metric is substituted under this name.
    """
    if ma_score is None:
        raise FileNotFoundError(
            "PI needs Ma et al.'s NRQM model (NRQM_model.mat: three random forests + linear fusion), which is "
            "not available offline here; supply ma_score=<function of the Y plane> (for example pyiqa's "
            "'nrqm' with its downloaded weights) to compute PI")
    shaved = y[4:-4, 4:-4]
    return 0.5 * ((10 - float(ma_score(shaved))) + niqe(shaved, params_path))
