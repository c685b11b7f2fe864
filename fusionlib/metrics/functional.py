"""The fusion metrics as vectorised torch functions (CPU or CUDA, float64).

Derived in ``notebooks/01_fusion_metrics.ipynb``; the conventions (which toolbox a variant
reproduces) are chosen by :func:`fusionlib.metrics.evaluate`. Every function here takes **grey
planes** ``(B, H, W)`` float64 on the 0–255 scale (B = colour channels evaluated independently,
or 1; a source with B = 1 broadcasts against a fused image with B = 3) and returns ``(B,)``: the
per-plane value, which the caller averages over channels.

Arguments: ``a`` = visible source, ``b`` = infrared source, ``f`` = fused image (VIFB's order
VI, IR, F). Where a toolbox quirk is reproduced, the docstring says so; ``docs/metrics.md``
has the background for each.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------- helpers


def filter2(x: torch.Tensor, k: torch.Tensor, pad: str | None) -> torch.Tensor:
    """2-D correlation of planes ``(B, H, W)`` (real or complex) with kernel ``(h, w)``.

    pad: ``None`` = 'valid'; ``"zeros"`` = MATLAB filter2/conv2 'same'; ``"replicate"``,
    ``"reflect"`` = imfilter-style borders. Computed as a sum of shifted slices (separably when
    the kernel has rank one), which on the CPU is several times faster than float64 ``conv2d``.
    """
    kh, kw = k.shape
    if pad is not None:
        top, left = (kh - 1) // 2, (kw - 1) // 2
        sizes = (left, kw - 1 - left, top, kh - 1 - top)
        x = _pad(x, sizes, pad)
    k = k.to(device=x.device, dtype=torch.float64)
    h, w = x.shape[-2:]
    oh, ow = h - kh + 1, w - kw + 1
    u, sv, vh = torch.linalg.svd(k)
    if kh > 3 and sv[1:].abs().max() <= 1e-12 * sv[0]:  # separable: rows then columns
        col, row = (u[:, 0] * sv[0]).tolist(), vh[0].tolist()
        tmp = _shift_sum(x, [(0, j, row[j]) for j in range(kw)], h, ow)
        return _shift_sum(tmp, [(i, 0, col[i]) for i in range(kh)], oh, ow)
    kl = k.tolist()
    return _shift_sum(x, [(i, j, kl[i][j]) for i in range(kh) for j in range(kw) if kl[i][j] != 0], oh, ow)


def _shift_sum(x: torch.Tensor, taps, oh: int, ow: int) -> torch.Tensor:
    """Σ c · x[..., i:i+oh, j:j+ow] over taps (i, j, c), accumulated in place (no temporaries)."""
    (i0, j0, c0), rest = taps[0], taps[1:]
    out = x[..., i0:i0 + oh, j0:j0 + ow] * c0
    for i, j, c in rest:
        out.add_(x[..., i:i + oh, j:j + ow], alpha=c)
    return out


def _pad(x: torch.Tensor, sizes: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """F.pad for (B, H, W) planes, real or complex (complex: real and imaginary parts alike)."""
    if x.is_complex():
        return torch.complex(_pad(x.real, sizes, mode), _pad(x.imag, sizes, mode))
    if mode == "zeros":
        return F.pad(x, sizes)
    return F.pad(x[:, None], sizes, mode=mode)[:, 0]


def _fast_len(n: int) -> int:
    """Smallest m ≥ n whose prime factors are 2, 3 and 5 (fast FFT lengths)."""
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _same_fft(x: torch.Tensor, kernels) -> list[torch.Tensor]:
    """Zero-padded 'same' correlations of real planes ``(B, H, W)`` with large odd kernels by FFT.

    A circular convolution of the zero-padded image is exact on the 'valid' part, which is the
    'same' result; one forward transform serves every kernel.
    """
    kh, kw = kernels[0].shape
    h, w = x.shape[-2:]
    xp = _pad(x, ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2), "zeros")
    size = (_fast_len(xp.shape[-2]), _fast_len(xp.shape[-1]))  # more zeros change nothing, but speed up the FFT
    spectrum = torch.fft.rfft2(xp, s=size)
    out = []
    for k in kernels:
        kf = torch.fft.rfft2(torch.flip(k, (0, 1)).to(device=x.device, dtype=torch.float64), s=size)
        out.append(_irfft2(spectrum * kf, size)[..., kh - 1:kh - 1 + h, kw - 1:kw - 1 + w])
    return out


def _conv(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """MATLAB ``conv2(x, k, 'same')``: true convolution (flipped kernel), zero padding."""
    return filter2(x, torch.flip(k, (0, 1)), "zeros")


def gaussian_kernel(n: int, sigma: float, normalise: bool = True) -> torch.Tensor:
    """MATLAB ``fspecial('gaussian', n, sigma)`` (normalised) or the raw exp(−r²/2σ²)/(2πσ²)."""
    r = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return g / g.sum() if normalise else g / (2 * math.pi * sigma ** 2)


def _freqspace(h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB ``freqspace([h, w], 'meshgrid')``: u along columns, v along rows, ((0..n−1) − ⌊n/2⌋)·2/n."""
    u = (torch.arange(w, dtype=torch.float64, device=device) - w // 2) * 2 / w
    v = (torch.arange(h, dtype=torch.float64, device=device) - h // 2) * 2 / h
    return u[None, :].expand(h, w), v[:, None].expand(h, w)


def _irfft2(spectrum: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``torch.fft.irfft2`` as a complex inverse along rows then a real inverse along columns:
    the same numbers, but 2–3× faster than torch's 2-D c2r on the CPU (measured with torch 2.14)."""
    return torch.fft.irfft(torch.fft.ifft(spectrum, n=size[0], dim=-2), n=size[1], dim=-1)


def _fft_filter(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``ifft2(ifftshift(fftshift(fft2(x)) .* S))`` of real planes, as the Liu/VIFB code does it.

    S is a function of |r| on the freqspace grid, so after ``ifftshift`` it is even in the
    frequency index (k and −k carry the same u², v²): the filter is real and symmetric and the
    result of the reference's complex arithmetic is real up to ~1e-13. We therefore compute it
    with real FFTs (half the work), which the tests check against the complex form.
    """
    h, w = x.shape[-2:]
    half = torch.fft.ifftshift(s)[..., : w // 2 + 1]
    return _irfft2(torch.fft.rfft2(x) * half, (h, w))


def round_half_away(x: torch.Tensor) -> torch.Tensor:
    """MATLAB ``round`` (half away from zero), unlike torch/numpy's half-to-even."""
    return torch.floor(x.abs().add_(0.5)).copysign_(x)


def _minmax_255(x: torch.Tensor) -> torch.Tensor:
    """Zheng Liu's ``normalize1``: per plane to [0, 255], rounded; all-zero planes are kept."""
    lo = x.amin((-2, -1), keepdim=True)
    hi = x.amax((-2, -1), keepdim=True)
    out = round_half_away((x - lo) / (hi - lo).clamp_min(1e-300) * 255)
    keep = (hi == 0) & (lo == 0)
    return torch.where(keep, x, out)


def _hist(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Per-plane histogram of integer levels 0..bins−1, ``(B, bins)`` float64 probabilities."""
    b = x.shape[0]
    idx = x.long().clamp(0, bins - 1) + bins * torch.arange(b, device=x.device)[:, None, None]
    counts = torch.bincount(idx.flatten(), minlength=b * bins).view(b, bins).double()
    return counts / counts.sum(1, keepdim=True)


def _plogp(p: torch.Tensor, log) -> torch.Tensor:
    return torch.where(p > 0, p * log(p.clamp_min(1e-300)), torch.zeros_like(p))


def _pearson(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MATLAB ``corr2`` per plane."""
    xm = x - x.mean((-2, -1), keepdim=True)
    ym = y - y.mean((-2, -1), keepdim=True)
    return (xm * ym).sum((-2, -1)) / torch.sqrt(xm.square().sum((-2, -1)) * ym.square().sum((-2, -1)))


SOBEL_Y = torch.tensor([[1.0, 2, 1], [0, 0, 0], [-1, -2, -1]], dtype=torch.float64)  # fspecial('sobel')
SOBEL_X = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=torch.float64)

# ---------------------------------------------------------------------------------- no-reference


def entropy(f: torch.Tensor) -> torch.Tensor:
    """EN ↑ = −Σ p_l log2 p_l over the 256-bin histogram of ⌊F⌋ (VIFB ``metricsEntropy``). Range [0, 8] bits."""
    return -_plogp(_hist(torch.floor(f)), torch.log2).sum(1)


def standard_deviation(f: torch.Tensor) -> torch.Tensor:
    """SD ↑ = sqrt(mean((F − μ)²)), population std on 0–255, range [0, 127.5] (Rao 1997; VIFB
    ``metricsVariance``, which despite its name returns the std). Same in every convention."""
    return f.std((-2, -1), correction=0)


def average_gradient(f: torch.Tensor) -> torch.Tensor:
    """AG ↑ = Σ sqrt((gx² + gy²)/2) / ((M−1)(N−1)), MATLAB ``gradient`` (central, one-sided at borders).

    Range [0, ∞). Cui et al. 2015; VIFB ``metricsAvg_gradient``. The normaliser (M−1)(N−1) with a
    sum over all MN pixels is VIFB's (and Tang's) quirk, kept in every convention.
    """
    gy, gx = torch.gradient(f, dim=(-2, -1))
    m, n = f.shape[-2:]
    return torch.sqrt((gx ** 2 + gy ** 2) / 2).sum((-2, -1)) / ((m - 1) * (n - 1))


def edge_intensity(f: torch.Tensor) -> torch.Tensor:
    """EI ↑ = mean sqrt(gx² + gy²), Sobel by correlation with replicate borders; range [0, ∞).
    Rajalingam & Priya 2018; VIFB ``metricsEdge_intensity``; same in every convention."""
    gx = filter2(f, SOBEL_Y, "replicate")
    gy = filter2(f, SOBEL_Y.T, "replicate")
    return torch.sqrt(gx ** 2 + gy ** 2).mean((-2, -1))


def spatial_frequency(f: torch.Tensor, normaliser: str = "mn") -> torch.Tensor:
    """SF ↑ = sqrt(RF² + CF²) of one plane ``(1, H, W)``; range [0, ∞) (Eskicioglu & Fisher 1995).

    ``normaliser="mn"`` divides both sums of squared differences by MN (VIFB); ``"count"`` by
    the number of differences, M(N−1) and (M−1)N (Tang, CDDFuse). VIFB evaluates colour images
    with the channels side by side as one M×3N plane: the caller passes that plane.
    """
    rf = (f.diff(dim=-1) ** 2).sum((-2, -1))
    cf = (f.diff(dim=-2) ** 2).sum((-2, -1))
    m, n = f.shape[-2:]
    if normaliser == "mn":
        return torch.sqrt(rf / (m * n) + cf / (m * n))
    return torch.sqrt(rf / (m * (n - 1)) + cf / ((m - 1) * n))


# ---------------------------------------------------------------------------------- information


def cross_entropy(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """CE ↓ = ½[KL(h_A‖h_F) + KL(h_B‖h_F)] in bits over levels where both histograms are non-zero;
    range [0, ∞). Bulanon et al. 2009; VIFB ``metricsCross_entropy`` (DCMIF's "CE"); every convention."""
    hf = _hist(f)

    def one(s):
        hs = _hist(s)
        ok = (hs > 0) & (hf > 0)
        return torch.where(ok, hs * torch.log2(hs.clamp_min(1e-300) / hf.clamp_min(1e-300)), torch.zeros_like(hs)).sum(1)
    return (one(a) + one(b)) / 2


def _stretch_255(z: torch.Tensor) -> torch.Tensor:
    """VIFB's MI pre-processing: min-max stretch to 0..255 with int16 rounding; constant planes -> 0."""
    lo, hi = z.amin((-2, -1), keepdim=True), z.amax((-2, -1), keepdim=True)
    return torch.where(hi > lo, round_half_away((z - lo) / (hi - lo).clamp_min(1e-300) * 255), torch.zeros_like(z))


def _mutual_information(x: torch.Tensor, y: torch.Tensor, log) -> torch.Tensor:
    """I(X;Y) per plane from the 256×256 joint histogram of integer levels (in the unit of ``log``)."""
    pair = x.long() * 256 + y.long()  # broadcasts a one-plane source against three fused channels
    b = pair.shape[0]
    idx = pair + 65536 * torch.arange(b, device=x.device)[:, None, None]
    joint = torch.bincount(idx.flatten(), minlength=b * 65536).view(b, 256, 256).double()
    joint = joint / joint.sum((1, 2), keepdim=True)
    hx = -_plogp(joint.sum(2), log).sum(1)
    hy = -_plogp(joint.sum(1), log).sum(1)
    hxy = -_plogp(joint.flatten(1), log).sum(1)
    return hx + hy - hxy


def mutual_information(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, base: float = 2.0,
                       normalise: bool = False) -> torch.Tensor:
    """MI ↑ = I(A;F) + I(B;F) from 256×256 joint histograms (Qu et al. 2002), summed over sources;
    range [0, 16] bits (each term is at most 8 bits).

    ``base=2`` gives bits (Qu, Tang, IASSF); VIFB uses ``base=math.e`` with ``normalise=True``
    (each image min-max stretched to 0..255 first).
    """
    log = torch.log2 if base == 2 else (torch.log if base == math.e else (lambda p: torch.log(p) / math.log(base)))
    if normalise:
        a, b, f = _stretch_255(a), _stretch_255(b), _stretch_255(f)
    a, b, f = (t.clamp(0, 255) for t in (a, b, f))
    return _mutual_information(a, f, log) + _mutual_information(b, f, log)


# ---------------------------------------------------------------------------------- reference-based


def rmse(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, vifb: bool = False) -> torch.Tensor:
    """RMSE ↓, mean over the two sources; range [0, 255] (Jagalingam & Hegde 2015; VIFB ``metricsRmse``).

    ``vifb=True`` reproduces VIFB's ``mse`` helper, which returns ‖X − F‖_F / (MN) (the root of the
    *sum* of squares divided by MN, not a root-mean-square); otherwise sqrt(mean((X − F)²)).
    """
    def one(x):
        if vifb:
            return torch.sqrt((x - f).square().sum((-2, -1))) / (f.shape[-1] * f.shape[-2])
        return torch.sqrt((x - f).square().mean((-2, -1)))
    return (one(a) + one(b)) / 2


def psnr(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, vifb: bool = False) -> torch.Tensor:
    """PSNR ↑ (dB, ≥ 0 for 8-bit data; Jagalingam & Hegde 2015; VIFB ``metricsPsnr``).
    ``vifb=True``: 20·log10(255 / sqrt(MES)) with MES = VIFB's quirky ``mse``
    averaged over sources (see :func:`rmse`); otherwise 10·log10(255² / mean(MSE(A,F), MSE(B,F)))."""
    if vifb:
        return 20 * torch.log10(255 / torch.sqrt(rmse(a, b, f, vifb=True)))
    mse = ((a - f).square().mean((-2, -1)) + (b - f).square().mean((-2, -1))) / 2
    return 10 * torch.log10(255 ** 2 / mse)


def ssim(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """SSIM(X, F) ↑ (Wang et al. 2004), range [−1, 1]: 11×11 Gaussian σ = 1.5, K = (0.01, 0.03),
    L = 255, 'valid' filtering, mean of the map (VIFB ``metricsSsim``'s inner function). The fusion
    SSIM sums (``vifb``) or averages (other conventions) it over the two sources."""
    return ssim_pair(x, x, f)[0]


def ssim_pair(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(SSIM(A, F), SSIM(B, F)) sharing the fused image's local statistics (see :func:`ssim`)."""
    w = gaussian_kernel(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    stats = [filter2(t, w, None) for t in (f, f * f, a, a * a, a * f, b, b * b, b * f)]
    mf, sff = stats[0], stats[1] - stats[0].square()

    def one(mx, xx, xf):
        sxx, sxf = xx - mx.square(), xf - mx * mf
        m = ((2 * mx * mf + c1) * (2 * sxf + c2)) / ((mx.square() + mf.square() + c1) * (sxx + sff + c2))
        return m.mean((-2, -1))
    return one(*stats[2:5]), one(*stats[5:8])


def correlation_coefficient(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """CC ↑ = [r(A, F) + r(B, F)] / 2, Pearson over all pixels (Tang, CDDFuse). Range [−1, 1]."""
    return (_pearson(a, f) + _pearson(b, f)) / 2


def scd(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """SCD ↑ = r(F − B, A) + r(F − A, B) (Aslantas & Bendes 2015). Range [−2, 2]."""
    return _pearson(f - b, a) + _pearson(f - a, b)


# ---------------------------------------------------------------------------------- gradient-based


def _sobel_strength_angle(x: torch.Tensor, scale: float):
    # integer levels times integer kernels are exact, so scaling after the filter changes no bit
    sx = _conv(x, SOBEL_X).mul_(scale)
    sy = _conv(x, SOBEL_Y).mul_(scale)
    g = torch.sqrt(sx.square() + sy.square())
    angle = torch.atan(sy / sx).masked_fill_(sx == 0, math.pi / 2)  # the reference's sx == 0 branch
    return g, angle


def qabf(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, scale: float = 255.0) -> torch.Tensor:
    """Q^{AB/F} ↑ (Xydeas & Petrović 2000), the code path shared by VIFB, Tang and CDDFuse.

    Sobel by convolution with zero padding, α = atan(sy/sx) (π/2 where sx = 0); relative
    strength G = min/max, except the quirk **G = g_F when g_X = g_F**; A = 1 − |α_X − α_F|/(π/2);
    Q = Γ_g/(1+e^{κ_g(G−σ_g)}) · Γ_α/(1+e^{κ_α(A−σ_α)}) with (0.9994, −15, 0.5) and (0.9879, −22, 0.8);
    weights g_X (L = 1). ``scale=255``: VIFB multiplies its 0–255 input by 255 again (``255*im2double``
    of a double), which only matters through the tie quirk. Range [0, 1].
    """
    gf, af = _sobel_strength_angle(f, scale)

    def q(x):
        gx, ax = _sobel_strength_angle(x, scale)
        G = torch.where(gx == gf, gf, torch.minimum(gx, gf).div_(torch.maximum(gx, gf)))  # max > 0 off ties
        A = (ax - af).abs_().mul_(-2 / math.pi).add_(1)                  # 1 − |α_X − α_F|/(π/2)
        # Γ/(1 + e^{κ(x − σ)}) = Γ·sigmoid(−κ(x − σ))
        qg = G.sub_(0.5).mul_(15).sigmoid_()
        qa = A.sub_(0.8).mul_(22).sigmoid_()
        return qg.mul_(qa).mul_(0.9994 * 0.9879), gx
    qa_, ga = q(a)
    qb_, gb = q(b)
    return (qa_ * ga + qb_ * gb).sum((-2, -1)) / (ga + gb).sum((-2, -1))


def nabf(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, td: float = 2.0, w_min: float = 0.001) -> torch.Tensor:
    """N^{AB/F} ↓, fusion artefacts (Shreyamsha Kumar 2013, modified Petrović): Sobel/8 on a mirror-
    extended image; G = min/max (0 if either is 0); A = ||α_X − α_F| − π/2|·2/π;
    Q = sqrt(0.9999/(1+e^{−19(G−0.5)}) · 0.9995/(1+e^{−22(A−0.5)})); weights g^1.5 where g ≥ Td
    (= 2 on 0–255) else ``w_min``; artefacts where g_F exceeds both sources. Range [0, 1]."""
    def grad(x):
        gh = filter2(x, SOBEL_X / 8, "reflect")
        gv = filter2(x, SOBEL_Y / 8, "reflect")
        g = torch.sqrt(gh.square() + gv.square())
        both0 = (gh == 0) & (gv == 0)
        ang = torch.where(both0, torch.zeros_like(gh),
                          torch.atan(gv / torch.where(gh == 0, torch.full_like(gh, 1e-300), gh)))
        return g, ang
    gf, af = grad(f)

    def q(x):
        gx, ax = grad(x)
        mx, mn = torch.maximum(gx, gf), torch.minimum(gx, gf)
        G = torch.where((gx == 0) | (gf == 0), torch.zeros_like(gx), mn / mx.clamp_min(1e-300))
        A = ((ax - af).abs() - math.pi / 2).abs() * 2 / math.pi
        Q = torch.sqrt(0.9999 / (1 + torch.exp(-19 * (G - 0.5))) * 0.9995 / (1 + torch.exp(-22 * (A - 0.5))))
        w = torch.where(gx >= td, gx ** 1.5, torch.full_like(gx, w_min))
        return Q, w, gx
    qa_, wa, ga = q(a)
    qb_, wb, gb = q(b)
    mask = (gf > ga) & (gf > gb)
    num = torch.where(mask, (1 - qa_) * wa + (1 - qb_) * wb, torch.zeros_like(wa)).sum((-2, -1))
    return num / (wa + wb).sum((-2, -1))


# ---------------------------------------------------------------------------------- perceptual


def qcb(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Q_CB ↑ (Chen & Blum 2009), Zheng Liu's code as integrated in VIFB, complex arithmetic kept.

    Min-max to 0–255 (rounded); CSF S(r) = e^{−(r/15.3870)²} − 0.7622·e^{−(r/1.3456)²} on the
    freqspace grid scaled by (N/30, M/30); contrast C = |G₂ * I / G₄ * I − 1| with un-normalised 31×31
    Gaussians σ = 2, 4, zero-padded 'same'; C' = C³/(C² + 1e-4); Q = mean(λ_A Q_AF + λ_B Q_BF). Range [0, 1].
    (The reference keeps complex values; their imaginary parts are rounding noise, see ``_fft_filter``.)
    """
    h, w = f.shape[-2:]
    u, v = _freqspace(h, w, f.device)
    r = torch.sqrt((u * w / 30) ** 2 + (v * h / 30) ** 2)
    s = torch.exp(-(r / 15.3870) ** 2) - 0.7622 * torch.exp(-(r / 1.3456) ** 2)
    g1, g2 = gaussian_kernel(31, 2, normalise=False), gaussian_kernel(31, 4, normalise=False)
    # all three images in one batch: min-max, CSF filtering (complex, as in the reference), contrast
    xf = _fft_filter(_minmax_255(torch.cat([a, b, f])), s)  # real: see _fft_filter
    c1, c2 = _same_fft(xf, (g1, g2))
    c = c1.div_(c2).sub_(1).abs_()                       # C = |G₂∗I / G₄∗I − 1| (in place: big arrays)
    csq = c.square()
    cp = csq.mul(c).div_(csq.add_(1e-4))                  # C' = C³/(C² + 1e-4)
    ca, cb, cf = cp.split([a.shape[0], b.shape[0], f.shape[0]])
    qaf = torch.minimum(ca, cf) / torch.maximum(ca, cf)   # the reference's "smaller over larger"
    qbf = torch.minimum(cb, cf) / torch.maximum(cb, cf)
    sa, sb = ca.square(), cb.square()
    la = sa / (sa + sb)                                   # saliency λ_A; λ_B = 1 − λ_A
    return (la * qaf + (1 - la) * qbf).mean((-2, -1))


def qcv(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor, window: int = 16, alpha: float = 5.0) -> torch.Tensor:
    """Q_CV ↓ (Chen & Varshney 2007), Zheng Liu's code as integrated in VIFB.

    Min-max to 0–255 (rounded); Sobel magnitude by zero-padded correlation; saliency λ = Σ g^α per
    16×16 block (α = 5); D = mean over the block (zero-padded at the border, as MATLAB ``blkproc``)
    of the square of the difference filtered by the Mannos–Sakrison CSF on the freqspace grid scaled
    by (N/8, M/8) (real: see ``_fft_filter``); Q = Σ(λ_A D_A + λ_B D_B) / Σ(λ_A + λ_B). Values in the hundreds.
    """
    a, b, f = _minmax_255(a), _minmax_255(b), _minmax_255(f)
    h, w = f.shape[-2:]
    u, v = _freqspace(h, w, f.device)
    r = torch.sqrt((u * w / 8) ** 2 + (v * h / 8) ** 2)
    csf = 2.6 * (0.0192 + 0.144 * r) * torch.exp(-(0.144 * r) ** 1.1)
    ph, pw = (-h) % window, (-w) % window

    def blocks(x, reduce):  # MATLAB blkproc: zero-pad partial blocks, then one value per block
        x = F.pad(x, (0, pw, 0, ph))
        bsz = x.shape[0]
        x = x.reshape(bsz, (h + ph) // window, window, (w + pw) // window, window)
        return reduce(x)

    def saliency(x):
        g = torch.sqrt(filter2(x, SOBEL_X, "zeros").square() + filter2(x, SOBEL_Y.flip(0), "zeros").square())
        powered = g.square().square().mul_(g) if alpha == 5 else g ** alpha  # g⁵ by multiplication: 10× faster
        return blocks(powered, lambda t: t.sum((2, 4)))

    def distortion(x):
        d = _fft_filter(x - f, csf)
        return blocks(d, lambda t: t.square().mean((2, 4)))
    la, lb = saliency(a), saliency(b)
    return (la * distortion(a) + lb * distortion(b)).sum((1, 2)) / (la + lb).sum((1, 2))


# ---------------------------------------------------------------------------------- visual information


def _vif_maps(ref: torch.Tensor, dist: torch.Tensor, sigma_nsq: float):
    """Per scale: (g, VID, VIND) maps of Sheikh & Bovik's pixel-domain VIF (4 scales)."""
    out = []
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = gaussian_kernel(n, n / 5).to(ref)
        if scale > 1:
            ref = filter2(ref, win, None)[:, ::2, ::2]
            dist = filter2(dist, win, None)[:, ::2, ::2]
        mu1, mu2 = filter2(ref, win, None), filter2(dist, win, None)
        s1 = filter2(ref * ref, win, None) - mu1.square()
        s2 = filter2(dist * dist, win, None) - mu2.square()
        s12 = filter2(ref * dist, win, None) - mu1 * mu2
        s1, s2 = s1.clamp_min(0), s2.clamp_min(0)
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g = torch.where(s1 < 1e-10, torch.zeros_like(g), g)
        sv = torch.where(s1 < 1e-10, s2, sv)
        s1 = torch.where(s1 < 1e-10, torch.zeros_like(s1), s1)
        g = torch.where(s2 < 1e-10, torch.zeros_like(g), g)
        sv = torch.where(s2 < 1e-10, torch.zeros_like(sv), sv)
        sv = torch.where(g < 0, s2, sv)
        g = g.clamp_min(0)
        sv = sv.clamp_min(1e-10)
        vid = torch.log10(1 + g.square() * s1 / (sv + sigma_nsq))
        vind = torch.log10(1 + s1 / sigma_nsq)
        out.append((g, vid, vind))
    return out


def vif(x: torch.Tensor, f: torch.Tensor, sigma_nsq: float = 2.0) -> torch.Tensor:
    """VIFp(X, F) ↑, Sheikh & Bovik's (2006) pixel-domain VIF with X as reference: Σ_s ΣVID / Σ_s ΣVIND.

    Range [0, ∞), 1 for F = X, above 1 for contrast enhancement. σ_n² = 2 on 0–255 data. The fusion
    "VIF" sums (``vifb``, ``canonical``, ``tang``) or averages (``lrrnet``) it over the two sources.
    """
    maps = _vif_maps(x, f, sigma_nsq)
    num = sum(m[1].sum((-2, -1)) for m in maps)
    den = sum(m[2].sum((-2, -1)) for m in maps)
    return num / den


def viff(a: torch.Tensor, b: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """VIFF ↑ (Han, Cai, Cao, Xu 2013, Q_VIF): per scale and pixel, the source with the smaller gain g
    (ties to B) supplies VID and VIND; F_s = Σ(VID + C)/Σ(VIND + C), C = 1e-7; VIFF = Σ p_s F_s with
    p = (1, 0, 0.15, 1)/2.15 and visual noise σ_n² = 0.005·255²."""
    sigma_nsq = 0.005 * 255 ** 2
    ma, mb = _vif_maps(a, f, sigma_nsq), _vif_maps(b, f, sigma_nsq)
    p = torch.tensor([1.0, 0.0, 0.15, 1.0], dtype=torch.float64) / 2.15
    total = torch.zeros(f.shape[0], dtype=torch.float64, device=f.device)
    for s, ((ga, vda, vna), (gb, vdb, vnb)) in enumerate(zip(ma, mb)):
        use_a = ga < gb
        vid = torch.where(use_a, vda, vdb)
        vind = torch.where(use_a, vna, vnb)
        total = total + p[s].item() * (vid + 1e-7).sum((-2, -1)) / (vind + 1e-7).sum((-2, -1))
    # a constant source has no information (VID = VIND = 0 everywhere): every scale would read C/C = 1,
    # the maximum, whatever F is. Undefined instead, as VIF is.
    flat = (a.flatten(1).amax(1) == a.flatten(1).amin(1)) | (b.flatten(1).amax(1) == b.flatten(1).amin(1))
    return torch.where(flat, torch.full_like(total, float("nan")), total)
