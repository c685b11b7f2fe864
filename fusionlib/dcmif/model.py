"""DCMIF (Zhang et al., "Missing No More", CVPR 2026): fusion from a visible image alone, through a
convolutional dictionary shared by the IR and VIS modalities.

Map of the paper to this module (derivations in ``notebooks/20_…`` to ``22_…``):

- §3.2, Eq. 4 and 8: the two closed-form data-consistency steps, :func:`csb_solve` (Fourier domain,
  Sherman–Morrison) and :func:`dsb_solve` (per-sample ridge regression by Cholesky), with
  :func:`otf` and :func:`correlate` (TailNet). Notebook 20 checks both against dense solves.
- §3.2, Alg. 1: :class:`HeadNet`, :class:`HypNet`, :class:`CoeNet` (Eq. 6), :class:`DicNet` (Eq. 10)
  and the unfolded network :class:`JSRL` (notebook 21).
- §3.3, Eq. 12–14: the representation used by later stages (:class:`DictionaryCodec` = REN +
  TailNet with a frozen shared dictionary; :class:`ConvCodec` = Table 3's "no dictionary" models),
  :class:`RIN` (multi-head perception blocks in a U-Net) and :class:`FiLM` (notebook 22).
- §3.4, Eq. 19: :class:`RFN` (two CAF blocks of window attention + convolutions) with the per-atom
  gate; :class:`DCMIF` is the VIS-only inference pipeline (notebook 22).

Where the official code departs from the paper (docs/dcmif.md#jsrl to #training), the paper's maths is the default and
the code's behaviour is a switch: ``otf_1d_bug`` (1-D FFT of the atoms), ``dsb="sequential"`` (two
dictionary solves instead of Eq. 8's joint one), ``gate=False`` (CAF regresses S_f directly instead
of Eq. 19's gate). Losses are in :mod:`fusionlib.dcmif.loss`, text priors in
:mod:`fusionlib.dcmif.text`, training glue in :mod:`fusionlib.dcmif.train`.

Images are ``(B, 1, H, W)`` float in [0, 1]: the Y of full-range (JPEG) YCbCr for VIS, grey for IR.
Coefficient maps are ``(B, C, H, W)`` with C atoms; a dictionary is ``(C, k, k)`` (shared) or
``(B, C, k, k)`` (one per sample), one output channel.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.common.complexity import count_parameters  # re-exported: notebooks 21-22 count DCMIF's blocks with it
from fusionlib.common.inputs import check_images

__all__ = ["otf", "correlate", "csb_solve", "dsb_normal_equations", "dsb_solve", "HeadNet", "HypNet",
           "CoeNet", "DicNet", "JSRL", "DictionaryCodec", "ConvCodec", "MPB", "RIN", "FiLM", "WSA", "RFN",
           "DCMIF", "pad_to_multiple", "count_parameters", "SIGMA"]

SIGMA = 50.0  # the code's constant "scale factor" σ (DCDicL's noise level input), docs/dcmif.md#jsrl


# ------------------------------------------------------------------ operators (notebook 20)

def otf(d: torch.Tensor, size: tuple[int, int], *, one_d_bug: bool = False) -> torch.Tensor:
    """Optical transfer function of kernels ``d`` ``(..., k, k)`` for ``size = (H, W)`` images.

    The kernel is zero-padded to H×W and rolled by −(k // 2) on both axes so that its centre sits
    at the origin, then 2-D FFT'd: ``(..., H, W)`` complex. ``one_d_bug=True`` reproduces the
    official code, which takes a 1-D FFT along the width only (docs/dcmif.md#jsrl; notebook 20 §3 shows why
    that breaks the closed form).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """
    kh, kw = d.shape[-2:]
    h, w = size
    if kh > h or kw > w:
        raise ValueError(f"kernel {kh}×{kw} is larger than the image {h}×{w}")
    pad = d.new_zeros(*d.shape[:-2], h, w)
    pad[..., :kh, :kw] = d
    pad = torch.roll(pad, shifts=(-(kh // 2), -(kw // 2)), dims=(-2, -1))
    return torch.fft.fft(pad, dim=-1) if one_d_bug else torch.fft.fft2(pad)


def correlate(s: torch.Tensor, d: torch.Tensor, padding: Literal["reflect", "circular"] = "reflect") -> torch.Tensor:
    """TailNet: ``I(x) = Σ_c Σ_p d_c(p) S_c(x + p − centre)``, the per-sample 2-D cross-correlation
    of C coefficient maps ``s`` ``(B, C, H, W)`` with C atoms ``d`` ``(C, k, k)`` or ``(B, C, k, k)``
    → ``(B, 1, H, W)``. ``reflect`` padding as TailNet; ``circular`` is the model CSB/DSB assume.

    Derived in ``notebooks/20_dcmif_convolutional_dictionary.ipynb`` §1.
    """
    if s.ndim != 4:
        raise ValueError(f"coefficients must be (B, C, H, W), got {tuple(s.shape)}")
    b, c, h, w = s.shape
    if d.ndim == 3:
        d = d.expand(b, *d.shape)
    if d.shape[:2] != (b, c):
        raise ValueError(f"dictionary {tuple(d.shape)} does not match coefficients {tuple(s.shape)}")
    kh, kw = d.shape[-2:]
    sp = F.pad(s, (kw // 2, kw // 2, kh // 2, kh // 2), mode=padding)
    out = F.conv2d(sp.reshape(1, b * c, *sp.shape[-2:]), d.reshape(b, c, kh, kw).to(s.dtype), groups=b)
    return out.reshape(b, 1, h, w)


def _up(x):
    return x.float() if torch.is_tensor(x) and x.dtype in (torch.float16, torch.bfloat16) else x


def _fp32(fn):
    """Run a closed-form solver in float32 with autocast off (FFTs and Cholesky need it under bf16 AMP)."""
    import functools

    @functools.wraps(fn)
    def run(*args, **kwargs):
        cast = [[tuple(map(_up, p)) for p in a] if isinstance(a, list) else _up(a) for a in args]
        with torch.autocast("cuda", enabled=False):
            return fn(*cast, **kwargs)
    return run


def _per_sample(x: torch.Tensor | float, b: int, like: torch.Tensor) -> torch.Tensor:
    """A float or a ``(B,)`` tensor as a ``(B,)`` tensor of ``like``'s dtype and device."""
    t = torch.as_tensor(x, dtype=like.dtype, device=like.device).reshape(-1)
    return t.expand(b) if t.numel() == 1 else t.reshape(b)


@_fp32
def csb_solve(image: torch.Tensor, s_prev: torch.Tensor, d: torch.Tensor, mu: torch.Tensor | float, *,
              one_d_bug: bool = False) -> torch.Tensor:
    """Coefficient data-consistency step (Eq. 4), in closed form.

    Solves, per sample and with circular boundaries,
    ``min_S ½‖I − Σ_c d_c ⋆ S_c‖² + (μ/2)‖S − S_prev‖²``.
    In the Fourier domain the normal equations decouple per frequency f into
    ``(μ I + a aᴴ) ŝ = z`` with ``a_c = D̂_c(f)`` and ``z = a Î + μ Ŝ_prev`` — a rank-one update of a
    scaled identity, inverted by Sherman–Morrison:
    ``ŝ = z/μ − a (aᴴ z) / (μ (μ + aᴴ a))`` (derivation: notebook 20 §2). With ``one_d_bug`` the
    spectrum is not Hermitian and, as the code, only the half that ``irfft2`` reads is inverted.

    Args:
        image: ``(B, 1, H, W)``; s_prev: ``(B, C, H, W)``; d: ``(C, k, k)`` or ``(B, C, k, k)``.
        mu: μ > 0, a float or ``(B,)``.
    Returns:
        S' ``(B, C, H, W)``.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """
    b, c, h, w = s_prev.shape
    if image.shape != (b, 1, h, w):
        raise ValueError(f"image {tuple(image.shape)} does not match coefficients {tuple(s_prev.shape)}")
    mu = _per_sample(mu, b, s_prev).reshape(b, 1, 1, 1)
    dh = otf(d, (h, w), one_d_bug=one_d_bug)                       # (B|1, C, H, W) complex
    if dh.ndim == 3:
        dh = dh.unsqueeze(0)
    z = dh * torch.fft.fft2(image) + mu * torch.fft.fft2(s_prev)   # a Î + μ Ŝ_prev
    ahz = (dh.conj() * z).sum(1, keepdim=True)                      # aᴴ z
    aha = (dh.abs() ** 2).sum(1, keepdim=True)                      # aᴴ a
    s_hat = z / mu - dh * ahz / (mu * (mu + aha))
    if one_d_bug:  # the code inverts with irfft2, which reads half of this (no longer Hermitian) spectrum
        return torch.fft.irfft2(s_hat, s=(h, w))
    return torch.fft.ifft2(s_hat).real


def dsb_normal_equations(s: torch.Tensor, image: torch.Tensor, kernel: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``XᵀX`` ``(B, Ck², Ck²)`` and ``Xᵀy`` ``(B, Ck²)`` of the dictionary least-squares problem.

    X maps a dictionary d (C·k² unknowns, index (c, p) with p the k×k offset from the centre) to
    ``Σ_c Σ_p d_c(p) S_c(x + p)`` (circular boundaries), so
    ``XᵀX[(c,p),(c',p')] = Σ_x S_c(x+p) S_c'(x+p') = R_cc'(p' − p)`` with the cross-correlation
    ``R_cc'(δ) = Σ_x S_c(x) S_c'(x+δ)``: only its (2k−1)² central lags are needed, computed as one
    grouped convolution of the circularly padded maps with the maps themselves (no dense
    ``HW × Ck²`` matrix). Likewise ``Xᵀy[(c,p)] = Σ_x S_c(x+p) I(x)``.

    Derived in ``notebooks/20_dcmif_convolutional_dictionary.ipynb`` §4.
    """
    b, c, h, w = s.shape
    r = kernel // 2
    lag = 2 * r
    corr = _LagCorrelation.apply(s, lag)                                               # (B, C, C', δy, δx)
    offsets = torch.arange(-r, r + 1, device=s.device)
    py, px = (t.reshape(-1) for t in torch.meshgrid(offsets, offsets, indexing="ij"))  # k² offsets, row-major
    iy = (py[None, :] - py[:, None]) + lag                                             # lag p' − p, as an index
    ix = (px[None, :] - px[:, None]) + lag
    gram = corr[:, :, :, iy, ix]                                                       # (B, C, C', k², k²)
    gram = gram.permute(0, 1, 3, 2, 4).reshape(b, c * kernel ** 2, c * kernel ** 2)
    rhs = F.conv2d(F.pad(s, (r, r, r, r), mode="circular").transpose(0, 1), image, groups=b)  # (C, B, k, k)
    return gram, rhs.transpose(0, 1).reshape(b, c * kernel ** 2)


class _LagCorrelation(torch.autograd.Function):
    """``R[b, c, c', δ] = Σ_x S_c(x) S_c'(x + δ)`` (circular) for the lags |δy|, |δx| ≤ ``lag``, as one
    grouped convolution of the padded maps with the maps themselves. The backward pass is written out
    because autograd's gradient of that convolution (an H×W kernel) took 4× the forward pass on CPU:
    ``∂L/∂S_a(y) = Σ_{c', δ} (G[a, c', δ] + G[c', a, −δ]) S_c'(y + δ)`` is one ordinary grouped
    convolution with a (2·lag+1)² kernel (notebook 20 §4; ``tests/dcmif/test_model.py`` gradchecks it)."""

    @staticmethod
    def forward(ctx, s: torch.Tensor, lag: int) -> torch.Tensor:
        b, c, h, w = s.shape
        ctx.save_for_backward(s)
        ctx.lag = lag
        # input (C', B, ·) with the B samples as groups; weight (B·C, 1, H, W) → (C', B·C, 2lag+1, 2lag+1)
        padded = F.pad(s, (lag, lag, lag, lag), mode="circular").transpose(0, 1)
        corr = F.conv2d(padded, s.reshape(b * c, 1, h, w), groups=b)
        return corr.reshape(c, b, c, 2 * lag + 1, 2 * lag + 1).permute(1, 2, 0, 3, 4)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (s,) = ctx.saved_tensors
        b, c, h, w = s.shape
        lag, n = ctx.lag, 2 * ctx.lag + 1
        weight = grad + grad.transpose(1, 2).flip(-2, -1)                    # (B, C, C', n, n)
        padded = F.pad(s, (lag, lag, lag, lag), mode="circular").reshape(1, b * c, h + 2 * lag, w + 2 * lag)
        return F.conv2d(padded, weight.reshape(b * c, c, n, n).to(s.dtype), groups=b).reshape(b, c, h, w), None


class _SPDSolve(torch.autograd.Function):
    """``x = a⁻¹ rhs`` for SPD ``a`` by Cholesky with diagonal jitter where a factorisation fails.
    The backward pass re-uses the factor: ``∂rhs = a⁻¹ g`` and ``∂a = −∂rhs xᵀ``, two triangular
    solves per sample instead of autograd's differentiation through the factorisation
    (two (Ck²)³ matrix products; 1.5 s of a 5 s JSRL step at 64²)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        scale = a.diagonal(dim1=-2, dim2=-1).mean(-1).abs().clamp_min(1e-12)[:, None, None]
        for jitter in (0.0, 1e-6, 1e-4, 1e-2, 1e-1):
            chol, info = torch.linalg.cholesky_ex(a + jitter * scale * eye)
            if not bool((info > 0).any()):
                if jitter >= 1e-2:  # whole 480×640 images in float32: the Gram's rounding reaches −2.5 % of its diagonal
                    warnings.warn(f"DSB: the dictionary normal equations needed a ridge of {jitter:g} × their mean "
                                  "diagonal to factorise (float32 rounding of a large Gram matrix)", RuntimeWarning, stacklevel=2)
                x = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
                ctx.save_for_backward(chol, x)
                return x
        raise torch.linalg.LinAlgError("dictionary normal equations are not positive definite even with 10% jitter")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        chol, x = ctx.saved_tensors
        grad_rhs = torch.cholesky_solve(grad.unsqueeze(-1), chol).squeeze(-1)
        return -grad_rhs.unsqueeze(-1) * x.unsqueeze(-2), grad_rhs


def _cholesky_solve(a: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Solve SPD systems ``a x = rhs`` ``(B, n, n)``, ``(B, n)`` by Cholesky, adding diagonal jitter
    where a factorisation fails (the official code silently keeps the previous dictionary instead;
    docs/dcmif.md#jsrl)."""
    return _SPDSolve.apply(a, rhs)


@_fp32
def dsb_solve(pairs: list[tuple[torch.Tensor, torch.Tensor]], d_prev: torch.Tensor, alpha: torch.Tensor | float,
              *, mode: Literal["joint", "sequential"] = "joint") -> torch.Tensor:
    """Dictionary data-consistency step (Eq. 8), a ridge regression per sample.

    ``joint`` (the paper): ``(Σ_m X_mᵀX_m + α I) d = Σ_m X_mᵀ I_m + α d_prev`` over the modalities
    m in ``pairs = [(S_ir, I_ir), (S_vis, I_vis)]``. ``sequential`` (the official code): one solve per
    modality in turn, each using the previous result as its prior.

    Args:
        pairs: ``[(S (B, C, H, W), I (B, 1, H, W)), …]``.
        d_prev: ``(B, C, k, k)``. alpha: α > 0, a float or ``(B,)``.
    Returns:
        D' ``(B, C, k, k)``.

    Derived in ``notebooks/20_dcmif_convolutional_dictionary.ipynb`` §4.
    """
    b, c, k, _ = d_prev.shape
    alpha = _per_sample(alpha, b, d_prev).reshape(b, 1)
    eye = torch.eye(c * k * k, dtype=d_prev.dtype, device=d_prev.device)
    normal = [dsb_normal_equations(s, i, k) for s, i in pairs]
    if mode == "joint":
        gram = sum(g for g, _ in normal)
        rhs = sum(r for _, r in normal) + alpha * d_prev.reshape(b, -1)
        return _cholesky_solve(gram + alpha[..., None] * eye, rhs).reshape(b, c, k, k)
    if mode != "sequential":
        raise ValueError(f"dsb mode must be 'joint' or 'sequential', got {mode!r}")
    d = d_prev.reshape(b, -1)
    for gram, rhs in normal:
        d = _cholesky_solve(gram + alpha[..., None] * eye, rhs + alpha * d)
    return d.reshape(b, c, k, k)


# ------------------------------------------------------------------ JSRL blocks (notebook 21)

def _const_map(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A ``(B, 1, H, W)`` map of a per-sample value ``(B,)`` shaped like ``x``'s batch and size."""
    return value.reshape(-1, 1, 1, 1).expand(x.shape[0], 1, *x.shape[-2:]).to(x)


class HeadNet(nn.Module):
    """Initial coefficients S_(0) = Conv3×3(ReLU(Conv5×5([I, σ]))) (Alg. 1 line 1; no biases).

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §1–2.
    """

    def __init__(self, n_atoms: int = 64):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2, n_atoms, 5, padding=2, bias=False), nn.ReLU(inplace=True),
                                  nn.Conv2d(n_atoms, n_atoms, 3, padding=1, bias=False))

    def forward(self, image: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
        return self.body(torch.cat([image, torch.full_like(image, sigma)], 1))


class HypNet(nn.Module):
    """Per-iteration hyperparameters from σ: μ_x, β_x (shared by both coefficient solvers), μ_d, β_d.

    Two 1×1 convolutions with a sigmoid between them (the paper omits it) and a softplus, as the
    code (4 outputs, not the paper's 6; docs/dcmif.md#choices). σ is a constant, so these are four learned
    constants in practice.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §1–2.
    """

    def __init__(self, hidden: int = 256):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, hidden, 1), nn.Sigmoid(), nn.Conv2d(hidden, 4, 1), nn.Softplus())

    def forward(self, sigma: torch.Tensor) -> dict[str, torch.Tensor]:
        x = ((sigma - 0.098) / 0.0566).reshape(-1, 1, 1, 1)  # DCDicL's normalisation of the noise level
        mu_x, beta_x, mu_d, beta_d = (self.body(x) + 1e-6).reshape(-1, 4).unbind(1)
        return {"mu_x": mu_x, "beta_x": beta_x, "mu_d": mu_d, "beta_d": beta_d}


class _ResBlock(nn.Sequential):
    def __init__(self, c: int):
        super().__init__(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.ReLU(inplace=True),
                         nn.Conv2d(c, c, 3, padding=1, bias=False))

    def forward(self, x):
        return x + super().forward(x)


class CoeNet(nn.Module):
    """Proximal step for the coefficients, S = CoeNet(S', β) (Eq. 6): a two-level residual U-Net
    (DRUNet style, no biases) on ``[S', 1/√β]``; needs H, W divisible by 4.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §1.
    """

    def __init__(self, n_atoms: int = 64, widths: tuple[int, int] = (128, 256)):
        super().__init__()
        c0, (c1, c2) = n_atoms + 1, widths
        self.down1 = nn.Sequential(_ResBlock(c0), nn.Conv2d(c0, c1, 2, stride=2, bias=False))
        self.down2 = nn.Sequential(_ResBlock(c1), nn.Conv2d(c1, c2, 2, stride=2, bias=False))
        self.body = _ResBlock(c2)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, stride=2, bias=False), _ResBlock(c1))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(c1, n_atoms, 2, stride=2, bias=False), _ResBlock(n_atoms))
        self.tail = nn.Conv2d(n_atoms, n_atoms, 3, padding=1, bias=False)

    def forward(self, s: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        x0 = torch.cat([s, _const_map(s, beta.rsqrt())], 1)
        x1 = self.down1(x0)
        x2 = self.down2(x1)
        x = self.up2(self.body(x2) + x2)
        x = self.up1(x + x1)
        return self.tail(x + s)


class DicNet(nn.Module):
    """Proximal step for the dictionary, D = DicNet(D', β) (Eq. 10): the C atoms as a C-channel k×k
    image plus a 1/√β channel, three two-convolution units (ReLU after the first two) and one global
    skip, as the code (the paper's "three residual modules").

    ``zero_init=True`` starts the last convolution at zero, so an untrained DicNet is the identity
    and the untrained IV-DLB is the classical algorithm (D = the DSB's least-squares solution). With
    PyTorch's default initialisation (the code's) the random residual makes the first reconstructions
    about two orders of magnitude worse (notebook 21 §3 measures both).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, n_atoms: int = 64, zero_init: bool = True):
        super().__init__()
        c = n_atoms
        self.body = nn.Sequential(nn.Conv2d(c + 1, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1),
                                  nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))
        if zero_init:
            nn.init.zeros_(self.body[-1].weight)
            nn.init.zeros_(self.body[-1].bias)

    def forward(self, d: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return d + self.body(torch.cat([d, _const_map(d, beta.rsqrt())], 1))


def pad_to_multiple(x: torch.Tensor, multiple: int = 8, mode: str = "circular") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the bottom/right of ``(B, C, H, W)`` up to a multiple (circularly, as the code); returns the
    padded tensor and the original ``(H, W)`` to crop back to.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §1.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph > h or pw > w:
        raise ValueError(f"image {h}×{w} is too small: sides must be at least {multiple // 2 + 1} pixels")
    return (F.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x), (h, w)


class JSRL(nn.Module):
    """Joint shared-dictionary representation learning (§3.2, Alg. 1), unfolded over N IV-DLBs.

    Args:
        n_atoms: B in the paper (64); kernel: atom size k (5); n_iter: N IV-DLBs (1).
        dsb: ``"joint"`` (Eq. 8, default) or ``"sequential"`` (the code).
        otf_1d_bug: reproduce the code's 1-D FFT of the atoms in the CSB.
        dicnet_zero_init: start DicNet as the identity (:class:`DicNet`); ``False`` is the code's init.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §1–3.
    """

    def __init__(self, n_atoms: int = 64, kernel: int = 5, n_iter: int = 1, *, dsb: str = "joint",
                 otf_1d_bug: bool = False, dicnet_zero_init: bool = True, sigma: float = SIGMA):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"the atom size must be odd, got {kernel}")
        self.n_atoms, self.kernel, self.n_iter = n_atoms, kernel, n_iter
        self.dsb, self.otf_1d_bug, self.sigma = dsb, otf_1d_bug, sigma
        self.head = nn.ModuleDict({m: HeadNet(n_atoms) for m in ("ir", "vis")})
        self.coenet = nn.ModuleDict({m: CoeNet(n_atoms) for m in ("ir", "vis")})
        self.hypnet = nn.ModuleList(HypNet() for _ in range(n_iter))
        self.dicnet = DicNet(n_atoms, zero_init=dicnet_zero_init)

    def hyper(self, n: int, batch: int, like: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.hypnet[n](torch.full((batch,), self.sigma, dtype=like.dtype, device=like.device))

    def coefficient_step(self, modality: str, image, s, d, hyp) -> torch.Tensor:
        """Lines 4–7 of Alg. 1: CSB (μ' = μ_x / C, as DCDicL) then CoeNet."""
        s = csb_solve(image, s, d, hyp["mu_x"] / self.n_atoms, one_d_bug=self.otf_1d_bug)
        return self.coenet[modality](s, hyp["beta_x"])

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> dict:
        """Both ``(B, 1, H, W)`` in [0, 1], any size (padded circularly to a multiple of 8 inside).

        Returns ``s_ir``, ``s_vis`` ``(B, C, H, W)``, ``d`` ``(B, C, k, k)``, the reconstructions
        ``recon_ir``/``recon_vis`` and ``steps``: per IV-DLB n the tuple (S_ir,(n), S_vis,(n),
        D_(n−1), D_(n)) for Eq. 11's losses (all at the padded size)."""
        check_images(self, ir=ir, vis=vis)
        if ir.shape != vis.shape or ir.shape[1] != 1:
            raise ValueError(f"JSRL takes two (B, 1, H, W) images of one size, got {tuple(ir.shape)} and {tuple(vis.shape)}")
        (ir, size), (vis, _) = pad_to_multiple(ir), pad_to_multiple(vis)
        b = ir.shape[0]
        s = {"ir": self.head["ir"](ir, self.sigma), "vis": self.head["vis"](vis, self.sigma)}
        d = ir.new_zeros(b, self.n_atoms, self.kernel, self.kernel)  # D_(0) = 0
        steps = []
        for n in range(self.n_iter):
            hyp = self.hyper(n, b, ir)
            s = {m: self.coefficient_step(m, img, s[m], d, hyp) for m, img in (("vis", vis), ("ir", ir))}
            alpha = hyp["mu_d"] * ir.shape[-2] * ir.shape[-1] * 1e-3 / (self.kernel ** 2 * self.n_atoms)  # the code's α''
            d_new = dsb_solve([(s["ir"], ir), (s["vis"], vis)], d, alpha, mode=self.dsb)
            d_new = self.dicnet(d_new, hyp["beta_d"])
            steps.append((s["ir"], s["vis"], d, d_new))
            d = d_new
        h, w = size
        return {"s_ir": s["ir"][..., :h, :w], "s_vis": s["vis"][..., :h, :w], "d": d, "steps": steps,
                "ir": ir, "vis": vis, "size": size,
                "recon_ir": correlate(s["ir"], d)[..., :h, :w], "recon_vis": correlate(s["vis"], d)[..., :h, :w]}

    def encode(self, image: torch.Tensor, modality: str, d: torch.Tensor) -> torch.Tensor:
        """REN (§3.3): HeadNet, then N × (CSB, CoeNet) with the frozen shared dictionary ``d``
        ``(C, k, k)``; input ``(B, 1, H, W)`` with H, W multiples of 8, output ``(B, C, H, W)``."""
        s = self.head[modality](image, self.sigma)
        for n in range(self.n_iter):
            s = self.coefficient_step(modality, image, s, d, self.hyper(n, image.shape[0], image))
        return s


# ------------------------------------------------------------------ representations for stages 2–3

class DictionaryCodec(nn.Module):
    """REN + TailNet with the frozen shared dictionary D (§3.3): ``encode(I, modality) -> S`` and
    ``decode(S) -> I``. The JSRL weights and D are buffers/frozen parameters: stages 2 and 3 never
    train them (the official VGII froze a *random* REN; docs/dcmif.md#training, fixed here).

    ``code_scale=None`` (the paper and the code): S is REN's output as it is. A number σ gives
    *centred* codes, ``S = (REN(I) − REN(0)) / σ`` and ``decode(S) = D ∗ (σ S)``: measured from the code
    of an all-black image of the same size (cached per size), in units of σ (:func:`fusionlib.dcmif.train.code_scale`),
    so that RIN reads and writes numbers of unit spread. HeadNet's constant noise-level channel gives every
    image the same large code, 99 % of its energy, which the frozen D decodes to a fixed pattern; centring
    removes both (docs/dcmif.md#why-stage-2-collapsed). σ is stored as the buffer ``code_scale``, so a
    checkpoint carries it. :meth:`in_atom_units` gives the codes that Eq. 16 compares.

    Derived in ``notebooks/21_dcmif_jsrl_unfolding.ipynb`` §4–5.
    """

    def __init__(self, jsrl: JSRL, dictionary: torch.Tensor, code_scale: float | None = None):
        super().__init__()
        if dictionary.shape != (jsrl.n_atoms, jsrl.kernel, jsrl.kernel):
            raise ValueError(f"shared dictionary must be ({jsrl.n_atoms}, {jsrl.kernel}, {jsrl.kernel}), "
                             f"got {tuple(dictionary.shape)}")
        if code_scale is not None and not code_scale > 0:
            raise ValueError(f"code_scale must be a positive number (or None for REN's raw codes), got {code_scale!r}")
        self.jsrl = jsrl.requires_grad_(False).eval()
        self.register_buffer("dictionary", dictionary.detach().clone())
        if code_scale is not None:
            self.register_buffer("code_scale", torch.tensor(float(code_scale)))
        self.n_atoms = jsrl.n_atoms
        self._empty: dict[tuple, torch.Tensor] = {}

    @property
    def centred(self) -> bool:
        return hasattr(self, "code_scale")

    def train(self, mode: bool = True):  # the frozen encoder stays in eval mode
        super().train(mode)
        self.jsrl.eval()
        return self

    @torch.no_grad()
    def empty_code(self, like: torch.Tensor, modality: str) -> torch.Tensor:
        """REN's code ``(1, C, H, W)`` of an all-black image the size of ``like`` (cached while D is unchanged)."""
        key = (modality, tuple(like.shape[-2:]), like.dtype, like.device, self.dictionary._version, self.dictionary.data_ptr())
        if key not in self._empty:
            self._empty = {k: v for k, v in self._empty.items() if k[4:] == key[4:]}
            self._empty[key] = self.jsrl.encode(like.new_zeros(1, 1, *like.shape[-2:]), modality, self.dictionary)
        return self._empty[key]

    def encode(self, image: torch.Tensor, modality: str) -> torch.Tensor:
        s = self.jsrl.encode(image, modality, self.dictionary)
        if self.centred:
            s = (s - self.empty_code(image, modality)) / self.code_scale
        return s

    def decode(self, s: torch.Tensor) -> torch.Tensor:
        return correlate(s * self.code_scale if self.centred else s, self.dictionary)

    def in_atom_units(self, s: torch.Tensor) -> torch.Tensor:
        """Codes ``(B, C, H, W)`` as amplitudes of unit-norm atoms, ``σ S_c ‖d_c‖₂`` (the column-wise
        normalisation the paper's φ(D) names), for centred codes: what Eq. 16's coefficient term compares,
        in the image's own units, whatever split of scale between D and S JSRL happened to learn. Raw codes
        are returned as they are (the code's loss)."""
        if not self.centred:
            return s
        return s * (self.code_scale * self.dictionary.flatten(1).norm(dim=1)).reshape(1, -1, 1, 1).to(s)


class ConvCodec(nn.Module):
    """Table 3's Model I/III: "the joint dictionary replaced with an encoder–decoder of three 3×3
    convolutional layers" — one encoder per modality (Conv, ReLU, Conv, ReLU, Conv → C maps) and a
    shared decoder (… → 1 channel). Trained in stage 1 on reconstruction alone (our reading: the
    paper gives no more detail).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §6.
    """

    def __init__(self, n_atoms: int = 64):
        super().__init__()
        def stack(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, n_atoms, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(n_atoms, n_atoms, 3, padding=1), nn.ReLU(inplace=True),
                                 nn.Conv2d(n_atoms, cout, 3, padding=1))
        self.enc = nn.ModuleDict({m: stack(1, n_atoms) for m in ("ir", "vis")})
        self.dec = stack(n_atoms, 1)
        self.n_atoms = n_atoms

    def encode(self, image: torch.Tensor, modality: str) -> torch.Tensor:
        return self.enc[modality](image)

    def decode(self, s: torch.Tensor) -> torch.Tensor:
        return self.dec(s)

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> dict:
        s_ir, s_vis = self.encode(ir, "ir"), self.encode(vis, "vis")
        return {"s_ir": s_ir, "s_vis": s_vis, "recon_ir": self.decode(s_ir), "recon_vis": self.decode(s_vis),
                "ir": ir, "vis": vis}


# ------------------------------------------------------------------ VGII (notebook 22)

class TransposedAttention(nn.Module):
    """MPB branch (b): Restormer-style attention across channels (a (C/h)×(C/h) map per head), with
    a full 3×3 convolution on q, k, v and L2-normalised q, k (docs/dcmif.md#vgii)."""

    def __init__(self, c: int, heads: int = 8):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Sequential(nn.Conv2d(c, 3 * c, 1, bias=False), nn.Conv2d(3 * c, 3 * c, 3, padding=1, bias=False))
        self.proj = nn.Conv2d(c, c, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in self.qkv(x).chunk(3, 1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class ChannelAttention(nn.Module):
    """MPB branch (c): ``x ⊙ σ(MLP(avgpool x) + MLP(maxpool x))`` (CBAM's channel attention)."""

    def __init__(self, c: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, c // reduction)
        self.mlp = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=False), nn.ReLU(inplace=True),
                                 nn.Conv2d(hidden, c, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.mlp(x.mean((2, 3), keepdim=True)) + self.mlp(x.amax((2, 3), keepdim=True)))


class MPB(nn.Module):
    """Multi-head perception block: convolution, channel-transposed attention and channel attention
    in parallel, concatenated and mixed by Conv3×3, ReLU, Conv3×3 (docs/dcmif.md#vgii).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))
        self.attn = TransposedAttention(c)
        self.channel = ChannelAttention(c)
        self.mix = nn.Sequential(nn.Conv2d(3 * c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([self.conv(x), self.attn(x), self.channel(x)], 1))


class _Up(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), nn.Conv2d(cin, cout, 3, padding=1))


class RIN(nn.Module):
    """Representation inference network (§3.3, the code's ``PIGBlock``): VIS coefficients → pseudo-IR
    coefficients, ``(B, C, H, W) -> (B, C, H, W)`` with H, W divisible by 4. A U-Net of MPBs
    (C → 2C → 4C, strided 2×2 downsampling, bilinear + 3×3 upsampling) and an attention head.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, c: int = 64):
        super().__init__()
        self.enc1, self.enc2, self.bottom = MPB(c), MPB(2 * c), MPB(4 * c)
        self.down1 = nn.Conv2d(c, 2 * c, 2, stride=2, bias=False)
        self.down2 = nn.Conv2d(2 * c, 4 * c, 2, stride=2, bias=False)
        self.up2, self.up1 = _Up(4 * c, 2 * c), _Up(2 * c, c)
        self.dec2, self.dec1 = MPB(2 * c), MPB(c)
        self.out = nn.Conv2d(c, c, 1)
        self.head_attn, self.head_channel = TransposedAttention(c), ChannelAttention(c)
        self.head = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e2 = self.down1(self.enc1(x) + x)
        e3 = self.down2(self.enc2(e2) + e2)
        b = self.bottom(e3) + e3
        u2 = self.up2(b + e3)
        u2 = self.dec2(u2) + u2
        u1 = self.up1(u2 + e2)
        u1 = self.dec1(u1) + u1
        z = u1 + x
        z = self.out(z) + z
        return self.head(self.head_attn(z) + self.head_channel(z))


class FiLM(nn.Module):
    """Eq. 12–13: γ = Φ_γ(F_text), β = Φ_β(F_text), S_fm = γ ⊙ S̃_vis + β per atom channel.

    Φ are single linear layers as in the code (the paper says "multi-layer perceptrons"); γ is used
    raw, not as 1 + γ, so S_fm ≈ β at initialisation (docs/dcmif.md#vgii).

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, text_dim: int, n_atoms: int = 64):
        super().__init__()
        self.gamma, self.beta = nn.Linear(text_dim, n_atoms), nn.Linear(text_dim, n_atoms)

    def forward(self, s: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.gamma(text)[..., None, None] * s + self.beta(text)[..., None, None]


# ------------------------------------------------------------------ AFRI (notebook 22)

class WSA(nn.Module):
    """Window self-attention: non-overlapping ``window``×``window`` windows, multi-head attention
    with biases, post-norm ``LN(attn(x) + x)``; H, W divisible by ``window``.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, c: int, heads: int = 4, window: int = 8):
        super().__init__()
        self.window = window
        self.attn = nn.MultiheadAttention(c, heads, batch_first=True)
        self.norm = nn.LayerNorm(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.window
        if h % n or w % n:
            raise ValueError(f"WSA needs H, W divisible by {n}, got {h}×{w}")
        t = x.reshape(b, c, h // n, n, w // n, n).permute(0, 2, 4, 3, 5, 1).reshape(-1, n * n, c)
        t = self.norm(self.attn(t, t, t, need_weights=False)[0] + t)
        return t.reshape(b, h // n, w // n, n, n, c).permute(0, 5, 1, 3, 2, 4).reshape(b, c, h, w)


class RFN(nn.Module):
    """Reasoning fusion network (§3.4): CAF1 = WSA(2C), {Conv, ReLU, Conv, ReLU, Conv} + S_pir;
    CAF2 = WSA(C), {Conv, ReLU, Conv}.

    ``gate=True`` (the paper, Eq. 19): CAF2 outputs 2C logits, a softmax over the two sources gives
    per-atom, per-pixel weights W_vis + W_pir = 1 and S_f = W_vis ⊙ S̃_vis + W_pir ⊙ S_pir.
    ``gate=False`` (the official code): CAF2's C outputs are S_f directly.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, c: int = 64, *, gate: bool = True, window: int = 8):
        super().__init__()
        self.gate = gate
        self.wsa1 = WSA(2 * c, window=window)
        self.caf1 = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))
        self.wsa2 = WSA(c, window=window)
        self.caf2 = nn.Sequential(nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(2 * c, 2 * c if gate else c, 3, padding=1))

    def forward(self, s_vis: torch.Tensor, s_pir: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns ``(S_f, W)`` with ``W`` ``(B, 2, C, H, W)`` = (W_vis, W_pir), or ``None`` without gate."""
        h = self.caf1(self.wsa1(torch.cat([s_vis, s_pir], 1))) + s_pir
        out = self.caf2(self.wsa2(h))
        if not self.gate:
            return out, None
        weights = out.reshape(out.shape[0], 2, -1, *out.shape[-2:]).softmax(1)
        return weights[:, 0] * s_vis + weights[:, 1] * s_pir, weights


# ------------------------------------------------------------------ the VIS-only pipeline

class DCMIF(nn.Module):
    """VIS-only fusion (Alg. 2): REN → RIN → critic/FiLM → RIN → RFN → TailNet.

    Args:
        codec: :class:`DictionaryCodec` (the paper) or :class:`ConvCodec` (Table 3's Models I/III).
        rin: :class:`RIN`; film: :class:`FiLM` or ``None`` ("No Prompt", Table 6).
        rfn: :class:`RFN`, or ``None`` to stop after VGII (stage-2 training).
        prior: a :class:`fusionlib.dcmif.text.TextPrior` (critic + sentence encoder), needed
            with ``film``.

    Derived in ``notebooks/22_dcmif_vgii_afri_and_tables.ipynb`` §1.
    """

    def __init__(self, codec: nn.Module, rin: RIN, film: FiLM | None = None, rfn: RFN | None = None, prior=None):
        super().__init__()
        if (film is None) != (prior is None):
            raise ValueError("FiLM needs a text prior and a text prior needs FiLM (pass both, or neither for 'No Prompt')")
        self.codec, self.rin, self.film, self.rfn, self.prior = codec, rin, film, rfn, prior

    def infer_ir(self, vis: torch.Tensor, names: list[str] | None = None) -> dict:
        """VGII (Eq. 12–14) on a padded ``(B, 1, H, W)`` VIS Y: ``s_vis``, ``s_pir0``, ``pir0``,
        ``s_pir`` (S_pir⁽¹⁾), ``pir`` (I_pir) and the critic's ``critiques``."""
        with torch.no_grad():
            s_vis = self.codec.encode(vis, "vis")  # REN is frozen
        out = {"s_vis": s_vis, "critiques": None}
        if self.film is not None:
            with torch.no_grad():  # the first pass only feeds the critic (no gradient path, as the code)
                out["s_pir0"] = self.rin(s_vis)
                out["pir0"] = self.codec.decode(out["s_pir0"])
            text, out["critiques"] = self.prior(vis, out["pir0"], names)
            s_in = self.film(s_vis, text.to(vis))
        else:
            s_in = s_vis
        out["s_pir"] = self.rin(s_in)
        out["pir"] = self.codec.decode(out["s_pir"])
        return out

    def forward(self, vis: torch.Tensor, names: list[str] | None = None) -> dict:
        """``vis`` ``(B, 1, H, W)`` Y in [0, 1], any size ≥ 5×5 (padded circularly to a multiple of 8
        and cropped back). Returns ``fused`` ``(B, 1, H, W)`` (unclamped), ``pir`` and the
        intermediate maps of :meth:`infer_ir` (at the padded size), plus the gate ``weights``."""
        check_images(self, vis=vis)
        if vis.ndim != 4 or vis.shape[1] != 1:
            raise ValueError(f"DCMIF takes the visible Y as (B, 1, H, W), got {tuple(vis.shape)}")
        padded, (h, w) = pad_to_multiple(vis)
        out = self.infer_ir(padded, names)
        if self.rfn is not None:
            out["s_f"], out["weights"] = self.rfn(out["s_vis"], out["s_pir"])
            out["fused"] = self.codec.decode(out["s_f"])[..., :h, :w]
        out["pir"] = out["pir"][..., :h, :w]
        if "pir0" in out:
            out["pir0"] = out["pir0"][..., :h, :w]
        return out
