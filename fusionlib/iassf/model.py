"""IASSF: infrared-assisted single-stage restoration and fusion under haze — the two networks.

Built as the official code builds them (docs/iassf.md#pipeline to #fusion-network), since that is what its released weights
expect; the paper calls the attention blocks "Restormer" blocks, the code uses DehazeFormer's
(rescale layer norm, window attention with an MLP relative-position bias, 1×1-convolution FFN):

- :class:`RLN`, :class:`WindowAttention`, :class:`Attention`, :class:`Block`, :class:`BasicLayer`,
  :class:`SKFusion`, :class:`Encoder` (the code's "Restormer encoder"): the building blocks (§3.2);
- :func:`haze_density` (HDE, Eq. 3–4): the code's non-differentiable behaviour (A ignored) and the
  paper's A-normalised version, both in torch;
- :class:`DehazeNet` (§3.3): shared encoder, prompt generation (PGM, Eq. 1–2), prompt embedding
  (PEB), infrared-assisted feature restoration (Eq. 5) and a DehazeFormer-S backbone;
- :class:`FusionNet` (§3.4, the paper's MsPE-FM): M = 5 fusion blocks with prompts.
- :class:`IASSF`: both, with reflect padding to a multiple of 8 so any input size works.

Images are RGB ``(B, 3, H, W)`` in [−1, 1] (IR replicated to 3 channels), as the code.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.common.complexity import count_parameters  # re-exported: notebooks 31-32
from fusionlib.common.inputs import check_images

__all__ = ["RLN", "WindowAttention", "Attention", "Block", "BasicLayer", "SKFusion", "Encoder", "PromptEmbedding",
           "haze_density", "DehazeNet", "FusionNet", "IASSF", "PROMPT_POOLS", "count_parameters"]


def _trunc_normal_(w: torch.Tensor, std: float) -> torch.Tensor:
    return nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


class RLN(nn.Module):
    """Rescale layer norm: normalise over (C, H, W) per sample; also return ``rescale`` = 1×1(σ) and
    ``rebias`` = 1×1(μ), applied to the sublayer's output (DehazeFormer).

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, dim, 1, 1))
        self.meta1, self.meta2 = nn.Conv2d(1, dim, 1), nn.Conv2d(1, dim, 1)
        _trunc_normal_(self.meta1.weight, 0.02)
        nn.init.constant_(self.meta1.bias, 1)
        _trunc_normal_(self.meta2.weight, 0.02)
        nn.init.constant_(self.meta2.bias, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = torch.sqrt((x - mean).pow(2).mean(dim=(1, 2, 3), keepdim=True) + self.eps)
        return (x - mean) / std * self.weight + self.bias, self.meta1(std), self.meta2(mean)


def relative_positions(window: int) -> torch.Tensor:
    """Log-scaled relative coordinates sign(Δ)·log(1 + |Δ|) of the w² tokens of a window, ``(w², w², 2)``."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).float()
    return torch.sign(rel) * torch.log1p(rel.abs())


class WindowAttention(nn.Module):
    """Multi-head attention inside one window, ``softmax(q kᵀ / √d + B)``, with the bias B from an
    MLP (2 → 256 → heads) of the log-scaled relative coordinates.

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.register_buffer("relative_positions", relative_positions(window), persistent=False)
        self.meta = nn.Sequential(nn.Linear(2, 256), nn.ReLU(inplace=True), nn.Linear(256, heads))

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        b, n, c3 = qkv.shape
        c = c3 // 3
        q, k, v = qkv.reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1) + self.meta(self.relative_positions).permute(2, 0, 1)
        return (attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)


class Attention(nn.Module):
    """DehazeFormer's token mixer: V = 1×1(x); with ``use_attn`` window attention on (QK, V) with
    reflect padding to the window (offset by ``shift`` for shifted blocks, not a cyclic roll); with
    ``conv`` a depthwise 5×5 convolution of V added to it; then a 1×1 projection.

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, dim: int, heads: int, window: int = 8, shift: int = 0, use_attn: bool = True,
                 conv: bool = False, depth: int = 32):
        super().__init__()
        self.dim, self.window, self.shift, self.use_attn = dim, window, shift, use_attn
        self.V = nn.Conv2d(dim, dim, 1)
        self.conv = nn.Conv2d(dim, dim, 5, padding=2, groups=dim, padding_mode="reflect") if conv else None
        if use_attn:
            self.QK = nn.Conv2d(dim, dim * 2, 1)
            self.attn = WindowAttention(dim, window, heads)
        self.proj = nn.Conv2d(dim, dim, 1) if use_attn or conv else None
        gain = (8 * depth) ** (-1 / 4)  # DehazeFormer's initialisation (docs/iassf.md#blocks)
        for m in (self.V, self.proj):
            if m is not None:
                _trunc_normal_(m.weight, gain * math.sqrt(2.0 / (m.in_channels + m.out_channels)))
                nn.init.zeros_(m.bias)
        if use_attn:
            _trunc_normal_(self.QK.weight, math.sqrt(2.0 / (dim + 2 * dim)))
            nn.init.zeros_(self.QK.bias)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        n, s = self.window, self.shift
        ph, pw = (n - h % n) % n, (n - w % n) % n
        pad = (s, (n - s + pw) % n, s, (n - s + ph) % n) if s else (0, pw, 0, ph)
        return F.pad(x, pad, mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        v = self.V(x)
        if not self.use_attn:
            return self.proj(self.conv(v)) if self.conv is not None else v
        qkv = self._pad(torch.cat([self.QK(x), v], 1))
        hp, wp = qkv.shape[-2:]
        n = self.window
        windows = qkv.permute(0, 2, 3, 1).reshape(b, hp // n, n, wp // n, n, 3 * c)
        windows = windows.permute(0, 1, 3, 2, 4, 5).reshape(-1, n * n, 3 * c)
        out = self.attn(windows).reshape(b, hp // n, wp // n, n, n, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        out = out[:, self.shift:self.shift + h, self.shift:self.shift + w].permute(0, 3, 1, 2)
        return self.proj(self.conv(v) + out if self.conv is not None else out)


class _MLP(nn.Sequential):
    def __init__(self, dim: int, hidden: int, depth: int):
        super().__init__(nn.Conv2d(dim, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, dim, 1))
        gain = (8 * depth) ** (-1 / 4)
        for m in (self[0], self[2]):
            _trunc_normal_(m.weight, gain * math.sqrt(2.0 / (m.in_channels + m.out_channels)))
            nn.init.zeros_(m.bias)


class Block(nn.Module):
    """x ← x + [RLN →] Attention [→ ·rescale + rebias]; x ← x + [RLN →] MLP [→ ·rescale + rebias].
    Blocks without attention have no norm (DehazeFormer); ``mlp_norm`` puts one before the MLP too
    (the code's encoder block).

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, dim: int, heads: int, hidden: int, *, window: int = 8, shift: int = 0, use_attn: bool = True,
                 conv: bool = True, mlp_norm: bool = False, depth: int = 32):
        super().__init__()
        self.use_attn, self.mlp_norm = use_attn, mlp_norm and use_attn
        self.norm1 = RLN(dim) if use_attn else None
        self.attn = Attention(dim, heads, window, shift, use_attn, conv, depth)
        self.norm2 = RLN(dim) if self.mlp_norm else None
        self.mlp = _MLP(dim, hidden, depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_attn:
            y, rescale, rebias = self.norm1(x)
            x = x + self.attn(y) * rescale + rebias
        else:
            x = x + self.attn(x)
        if self.mlp_norm:
            y, rescale, rebias = self.norm2(x)
            return x + self.mlp(y) * rescale + rebias
        return x + self.mlp(x)


class BasicLayer(nn.Sequential):
    """``depth`` blocks, attention in the last ``attn_blocks``, odd blocks shifted by window/2.

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float, attn_blocks: int, window: int = 8,
                 network_depth: int = 32):
        super().__init__(*(Block(dim, heads, int(dim * mlp_ratio), window=window, shift=window // 2 if i % 2 else 0,
                                 use_attn=i >= depth - attn_blocks, conv=True, depth=network_depth)
                           for i in range(depth)))


class SKFusion(nn.Module):
    """Selective-kernel fusion of two feature maps: softmax weights from GAP of their sum.

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, dim: int, reduction: int = 8):
        super().__init__()
        d = max(dim // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(dim, d, 1, bias=False), nn.ReLU(inplace=True), nn.Conv2d(d, dim * 2, 1, bias=False))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        w = self.mlp((a + b).mean((2, 3), keepdim=True)).reshape(a.shape[0], 2, a.shape[1], 1, 1).softmax(1)
        return w[:, 0] * a + w[:, 1] * b


class Encoder(nn.Module):
    """The code's "Restormer encoder" Enc(in → C): Conv1×1, then one block of RLN + window attention
    (1 head, no shift, no convolution) and RLN + FFN (hidden int(2.66·C)), each with rescale/rebias.

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §3.
    """

    def __init__(self, cin: int, dim: int, depth: int = 4):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, 1)
        self.block = Block(dim, 1, int(2.66 * dim), use_attn=True, conv=False, mlp_norm=True, depth=depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.proj(x))


class PromptEmbedding(nn.Module):
    """PEB: Conv3×3(Conv1×1(W-Attn(cat(f, p)))) with 2d → d channels (no norm, no residual inside).

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §2.
    """

    def __init__(self, dim: int, heads: int, depth: int):
        super().__init__()
        self.attn = Attention(2 * dim, heads, use_attn=True, conv=False, depth=depth)
        self.reduce = nn.Conv2d(2 * dim, dim, 1, bias=False)
        self.out = nn.Conv2d(dim, dim, 3, padding=1, bias=False)

    def forward(self, f: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        return self.out(self.reduce(self.attn(torch.cat([f, prompt], 1))))


def _box(x: torch.Tensor, size: int) -> torch.Tensor:
    """OpenCV-style normalised box filter with a ``size``×``size`` window (reflect-101 borders).

    Separable running sums in float64 (cv2.boxFilter's method): O(1) per pixel whatever the window, where
    ``avg_pool2d`` sums size² values (3,600 a pixel for the HDE's 60×60 window)."""
    lo, hi = size // 2, (size - 1) // 2  # cv2's default anchor size // 2: an even window reaches one pixel further back
    fits = lo < min(x.shape[-2:])  # torch reflects once only; smaller images repeat their edge instead
    p = F.pad(x, (lo, hi, lo, hi), mode="reflect" if fits else "replicate").double()
    c = F.pad(p.cumsum(-1), (1, 0))
    rows = c[..., size:] - c[..., :-size]
    c = F.pad(rows.cumsum(-2), (0, 0, 1, 0))
    return ((c[..., size:, :] - c[..., :-size, :]) / (size * size)).to(x.dtype)


def _min_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size``×``size`` minimum (replicated borders) as a row pass and a column pass: equal to the 2-D
    filter (a minimum is separable), 2·size comparisons a pixel instead of size²."""
    pad = size // 2
    x = F.pad(-x, (pad, pad, pad, pad), mode="replicate")
    return -F.max_pool2d(F.max_pool2d(x, (1, size), stride=1), (size, 1), stride=1)


def haze_density(features: torch.Tensor, *, omega: float = 0.95, patch: int = 15, window: int = 60,
                 eps: float = 1e-4, use_atmosphere: bool = False, quantise: bool = True) -> torch.Tensor:
    """HDE (Eq. 3–4): haze density H = 1 − T′ ``(B, 1, H, W)`` from visible features ``(B, C, H, W)``.

    As the code: g = channel mean, min–max normalised per sample (and truncated to 8 bits), the dark
    channel (a ``patch``×``patch`` min filter), t = 1 − ω·dark, refined by a guided filter (guide g,
    ``window``×``window`` box, ε) and H = 1 − t′. ``use_atmosphere=True`` is the paper's
    T = 1 − ω·dark(g / A), A the mean of the brightest 0.1 % dark-channel pixels (the code computes A
    and never uses it). Torch throughout: differentiable except through the quantisation and A's
    pixel selection; carries no gradient in training, as the code.

    Derived in ``notebooks/30_iassf_haze_physics.ipynb`` §2.
    """
    g = features.mean(1, keepdim=True)
    lo = g.amin((2, 3), keepdim=True)
    hi = g.amax((2, 3), keepdim=True)
    g = (g - lo) / (hi - lo + 1e-8)
    if quantise:  # the code's feature.astype(np.uint8) truncates
        g = torch.floor(g * 255) / 255
    dark = _min_filter(g, patch)
    if use_atmosphere:
        flat = dark.flatten(1)
        k = max(1, int(flat.shape[1] * 0.001))
        idx = flat.topk(k, dim=1).indices
        a = g.flatten(1).gather(1, idx).mean(1).reshape(-1, 1, 1, 1).clamp_min(1e-6)
        dark = _min_filter(g / a, patch)
    t = 1 - omega * dark
    mean_g, mean_t = _box(g, window), _box(t, window)
    cov = _box(g * t, window) - mean_g * mean_t
    var = _box(g * g, window) - mean_g ** 2
    a_coef = cov / (var + eps)
    b_coef = mean_t - a_coef * mean_g
    refined = _box(a_coef, window) * g + _box(b_coef, window)
    return 1 - refined


class DehazeNet(nn.Module):
    """Network (A), docs/iassf.md#dehaze-network: hazy VIS + IR (RGB in [−1, 1]) → dehazed VIS and a 3-channel IR
    projection for the fusion net; H, W multiples of 8 (:class:`IASSF` pads).

    Table VII's ablations: ``use_ir=False`` "w/o F_ir" (Eq. 5 without the IR term),
    ``use_hde=False`` "w/o HDE" (H ≡ 1: IR injected everywhere), ``use_prompt=False`` "w/o P̂_ir"
    (zero prompt into the PEB), ``use_peb=False`` "w/o FR-PEB" (F̂_ir = F_ir).

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §2.
    """

    def __init__(self, dim: int = 24, n_prompts: int = 5, prompt_size: int = 256, *, use_atmosphere: bool = False,
                 use_ir: bool = True, use_hde: bool = True, use_prompt: bool = True, use_peb: bool = True):
        super().__init__()
        self.use_atmosphere = use_atmosphere
        self.use_ir, self.use_hde, self.use_prompt, self.use_peb = use_ir, use_hde, use_prompt, use_peb
        self.encoder = Encoder(3, dim)                       # shared by both modalities
        self.ir_projection = nn.Conv2d(dim, 3, 1)
        # PGM (Eq. 1–2, the code's version): 5 scalar weights from GAP(F_vi − F_ir), a prompt pool
        self.prompt_weights = nn.Linear(dim, n_prompts)
        self.prompt_pool = nn.Parameter(torch.rand(n_prompts, dim, prompt_size, prompt_size))
        self.prompt_conv = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.peb = PromptEmbedding(dim, 2, depth=32)
        # unused by the forward pass, present in the released state dict (docs/iassf.md#dehaze-network, step 10)
        self.w_ir, self.w_vi = nn.Parameter(torch.ones(1)), nn.Parameter(torch.ones(1))
        self.ir_scale_conv = nn.Conv2d(dim, dim, 1, bias=False)
        self.vi_scale_conv = nn.Conv2d(dim, dim, 1, bias=False)
        # DehazeFormer-S backbone
        d1, d2, d3 = dim, 2 * dim, 4 * dim
        self.embed = nn.Conv2d(dim, d1, 3, padding=1, padding_mode="reflect")
        self.skip0 = nn.Conv2d(d1, d1, 1)
        self.layer1 = BasicLayer(d1, 8, 2, 2, 2)
        self.merge1 = nn.Conv2d(d1, d2, 2, stride=2)
        self.layer2 = BasicLayer(d2, 8, 4, 4, 4)
        self.merge2 = nn.Conv2d(d2, d3, 2, stride=2)
        self.layer3 = BasicLayer(d3, 8, 6, 4, 6)
        self.split1 = nn.Sequential(nn.Conv2d(d3, d2 * 4, 1), nn.PixelShuffle(2))
        self.skip2, self.fusion1 = nn.Conv2d(d2, d2, 1), SKFusion(d2)
        self.layer4 = BasicLayer(d2, 4, 1, 2, 0)
        self.split2 = nn.Sequential(nn.Conv2d(d2, d1 * 4, 1), nn.PixelShuffle(2))
        self.skip1, self.fusion2 = nn.Conv2d(d1, d1, 1), SKFusion(d1)
        self.layer5 = BasicLayer(d1, 4, 1, 2, 0)
        self.fusion0 = SKFusion(d1)
        self.out = nn.Conv2d(d1, 3, 3, padding=1, padding_mode="reflect")

    def prompt(self, f_vi: torch.Tensor, f_ir: torch.Tensor) -> torch.Tensor:
        """P̂ = Conv3×3(resize(Σ_i w_i P_i)), w = softmax(Linear(GAP(F_vi − F_ir)))."""
        w = self.prompt_weights((f_vi - f_ir).mean((2, 3))).softmax(-1)           # (B, 5)
        p = torch.einsum("bn,nchw->bchw", w, self.prompt_pool)
        p = F.interpolate(p, size=f_vi.shape[-2:], mode="bilinear", align_corners=False)
        return self.prompt_conv(p)

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        skip0 = self.skip0(x)
        x = skip1 = self.layer1(x)
        x = skip2 = self.layer2(self.merge1(x))
        x = self.layer3(self.merge2(x))
        x = self.split1(x)
        x = self.layer4(self.fusion1(x, self.skip2(skip2)) + x)
        x = self.split2(x)
        x = self.layer5(self.fusion2(x, self.skip1(skip1)) + x)
        x = self.fusion0(x, skip0) + x
        return self.out(x)

    def forward(self, hazy: torch.Tensor, ir: torch.Tensor) -> dict[str, torch.Tensor]:
        f_vi, f_ir = self.encoder(hazy), self.encoder(ir)
        p_ir = self.ir_projection(f_ir)                                             # before the prompt refinement
        if self.use_peb:                                                            # PEB(F_ir, P̂_ir)
            prompt = self.prompt(f_vi, f_ir)
            f_ir_hat = self.peb(f_ir, prompt if self.use_prompt else torch.zeros_like(prompt))
        else:
            f_ir_hat = f_ir
        with torch.no_grad():                                                       # HDE carries no gradient
            density = (haze_density(f_vi, use_atmosphere=self.use_atmosphere) if self.use_hde
                       else torch.ones_like(f_vi[:, :1]))
        x = (f_ir_hat * density if self.use_ir else 0) + f_vi * (1 - density) + f_vi  # Eq. 5
        return {"dehazed": self.backbone(x), "ir_projection": p_ir, "density": density}


class FusionNet(nn.Module):
    """Network (B), the paper's MsPE-FM (docs/iassf.md#fusion-network): M fusion blocks (M = 5: 3 encoder stages at
    1, ½, ¼ scale and 2 decoder stages), each an Enc with a prompt-embedding residual, a skip
    connection into every decoder stage, prompts from P_ir − Î_vi; H, W multiples of 2^((M−1)/2).

    ``use_prompt=False`` is Table VII's "w/o P̂_vi" (zero prompts), ``use_peb=False`` its
    "w/o FB-PEB" (no prompt-embedding residual); ``blocks`` is Table IX's M (odd).

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §4.
    """

    def __init__(self, width: int = 6, n_prompts: int = 5, prompt_size: int = 256, *, blocks: int = 5,
                 use_prompt: bool = True, use_peb: bool = True):
        super().__init__()
        if blocks < 1 or blocks % 2 == 0:
            raise ValueError(f"the number of fusion blocks M must be odd and positive, got {blocks}")
        c, levels = width, (blocks + 1) // 2
        self.use_prompt, self.use_peb = use_prompt, use_peb
        self.prompt_in = nn.Conv2d(3, c, 1, bias=False)
        self.prompt_weights = nn.Linear(c, n_prompts)
        self.prompt_pool = nn.Parameter(torch.rand(n_prompts, c, prompt_size, prompt_size))
        self.prompt_conv = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.Conv2d(c, c, 1, bias=False))
        # stage i works at scale 2^-level[i]: encoders 0 … L−1, then decoders L−2 … 0
        self.level = list(range(levels)) + list(range(levels - 2, -1, -1))
        widths = [c * 2 ** lv for lv in self.level]
        ins = [6] + widths[:-1]  # the first block sees cat(Î_vi, P_ir): 2 × RGB
        self.enc = nn.ModuleList(Encoder(cin, cout) for cin, cout in zip(ins, widths))
        self.peb = nn.ModuleList(PromptEmbedding(d, 1, depth=4) for d in widths) if use_peb else None
        self.adapt = nn.ModuleList(nn.Conv2d(c, d, 1, bias=False) for d in widths) if use_peb else None
        self.skips = nn.ModuleList(nn.Conv2d(c * 2 ** lv, c * 2 ** lv, 1) for lv in self.level[levels:])
        self.out = nn.Conv2d(c, 3, 1)
        self.levels = levels

    def prompt(self, dehazed: torch.Tensor, ir_projection: torch.Tensor) -> torch.Tensor:
        w = self.prompt_weights(self.prompt_in(ir_projection - dehazed).mean((2, 3))).softmax(-1)  # IR minus VIS
        p = torch.einsum("bn,nchw->bchw", w, self.prompt_pool)
        p = F.interpolate(p, size=dehazed.shape[-2:], mode="bilinear", align_corners=True)
        return self.prompt_conv(p)

    def forward(self, dehazed: torch.Tensor, ir_projection: torch.Tensor) -> torch.Tensor:
        q = self.prompt(dehazed, ir_projection)
        if not self.use_prompt:
            q = torch.zeros_like(q)
        scaled = {0: q, **{lv: F.interpolate(q, scale_factor=0.5 ** lv, mode="bilinear", align_corners=True)
                           for lv in range(1, self.levels)}}

        def stage(i, x):
            x = self.enc[i](x)
            return x + self.peb[i](x, self.adapt[i](scaled[self.level[i]])) if self.use_peb else x
        x = torch.cat([dehazed, ir_projection], 1)
        encoded = []
        for i in range(self.levels):  # encoder stages, max-pooled between them
            x = stage(i, x if i == 0 else F.max_pool2d(x, 2))
            encoded.append(x)
        for j, i in enumerate(range(self.levels, len(self.level))):  # decoder stages with skips
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            x = stage(i, x) + self.skips[j](encoded[self.level[i]])
        return self.out(x)


class IASSF(nn.Module):
    """Both networks: ``(hazy VIS, IR)`` RGB in [−1, 1], any size (reflect-padded to a multiple of 8
    and at least 32, cropped back) → ``dehazed``, ``fused`` (both in [−1, 1] scale, unclamped),
    ``ir_projection``, ``density``. ``blocks`` is M (Table IX); ``ablation`` one of Table VII's six
    (:attr:`ABLATIONS`).

    Derived in ``notebooks/31_iassf_prompts_and_blocks.ipynb`` §4.
    """

    ABLATIONS = {"w/o F_ir": ("dehaze", "use_ir"), "w/o HDE": ("dehaze", "use_hde"), "w/o P_ir": ("dehaze", "use_prompt"),
                 "w/o FR-PEB": ("dehaze", "use_peb"), "w/o P_vi": ("fusion", "use_prompt"), "w/o FB-PEB": ("fusion", "use_peb")}

    def __init__(self, *, use_atmosphere: bool = False, prompt_size: int = 256, blocks: int = 5,
                 ablation: str | None = None):
        super().__init__()
        if ablation is not None and ablation not in self.ABLATIONS:
            raise ValueError(f"ablation must be one of {sorted(self.ABLATIONS)}, got {ablation!r}")
        off = {self.ABLATIONS[ablation]: False} if ablation else {}
        self.dehaze = DehazeNet(use_atmosphere=use_atmosphere, prompt_size=prompt_size,
                                **{k: v for (net, k), v in off.items() if net == "dehaze"})
        self.fusion = FusionNet(prompt_size=prompt_size, blocks=blocks,
                                **{k: v for (net, k), v in off.items() if net == "fusion"})
        self.multiple = max(8, 2 ** ((blocks - 1) // 2))

    def forward(self, hazy: torch.Tensor, ir: torch.Tensor) -> dict[str, torch.Tensor]:
        check_images(self, hazy=hazy, ir=ir)
        if hazy.ndim != 4 or hazy.shape[1] != 3 or ir.shape != hazy.shape:
            raise ValueError(f"IASSF takes hazy VIS and IR as (B, 3, H, W) of one size (IR replicated), "
                             f"got {tuple(hazy.shape)} and {tuple(ir.shape)}")
        h, w = hazy.shape[-2:]
        # a multiple of 8, and at least 32: the shifted windows of the 1/4-scale layer reflect-pad by 4
        n = self.multiple
        ph, pw = max(32, h + (-h) % n) - h, max(32, w + (-w) % n) - w
        mode = "reflect" if ph < h and pw < w else "replicate"
        pad = lambda x: F.pad(x, (0, pw, 0, ph), mode=mode) if ph or pw else x  # noqa: E731
        out = self.dehaze(pad(hazy), pad(ir))
        out["fused"] = self.fusion(out["dehazed"], out["ir_projection"])
        return {k: v[..., :h, :w] for k, v in out.items()}


# the parameter names of the two learnable 256×256 prompt pools (88 % of IASSF's parameters):
# count_parameters(net, exclude=PROMPT_POOLS) counts the rest
PROMPT_POOLS = ("prompt_pool",)
