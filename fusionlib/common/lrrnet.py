"""LRRNet (Li et al., TPAMI 2023), the exact base LRCFuse extends, and its released checkpoint.

How the authors' code builds it: ``docs/lrcfuse.md#lrrnet``. Two LLRR encoders (one per modality,
separate weights; IR first) unfold a learned low-rank representation for K = 4 blocks:

    Z₀ = η_θ(W₀ ∗ X)                                       W₀: Conv3×3 1→2n
    Z_k = η_θ(λ_z·Z_{k−1} + W_dt ∗ (X − W_d ∗ Z_{k−1}))     W_d: 2n→1, W_dt: 1→2n (per block)
    η_θ(r) = sign(r)·max(|r| − θ_c, 0)                      θ ∈ R^{2n} shared by the blocks

L = Z_K[:, :n] (low-rank part), S = Z_K[:, n:] (sparse part). The "cat" decoder maps each of
L_ir, S_ir, L_vis, S_vis to one channel, fuses lows and highs with Conv3×3 2→1 each, and adds them.
Every convolution is 3×3 with reflection padding and a bias. With n = 128: 49,204 parameters.

Attribute names follow the authors' checkpoint (``get_ls1.lamj`` is θ of the IR encoder,
``lamz`` is λ_z, ``conv_W00`` is W₀, ``lrrblock{k}.conv_Wdz`` / ``conv_Wdtz`` are W_d / W_dt,
``decoder.conv_Re{Z,U}{x,y}`` map the low-rank/sparse parts of IR (x) and VIS (y), and
``conv_ReL`` / ``conv_ReH`` fuse lows and highs), so :func:`load_official` loads it strictly.
Derived in ``notebooks/10_lrcfuse_lrr_to_lista.ipynb`` (LRR → LISTA → LLRR block).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.common.inputs import check_images
from fusionlib.common.rgb import fuse_rgb
from fusionlib.paths import weights_file, weights_root

__all__ = ["OFFICIAL_CHECKPOINT", "soft_threshold", "normalise", "check_pair", "LLRRBlock", "LLRREncoder", "CatDecoder",
           "LRRNet", "load_official", "fuse_official", "rgb_fuser", "released_fuser"]

OFFICIAL_CHECKPOINT = "lrrnet/final_lrr_net_lam2_1.5_wir_3.0_lam3_gram_2000_epoch_4_block_4.model"
OFFICIAL_URL = ("https://github.com/hli1221/imagefusion-LRRNet/raw/main/model/"
                "final_lrr_net_lam2_1.5_wir_3.0_lam3_gram_2000_epoch_4_block_4.model")
EPS = 1e-5  # the authors' min-max epsilon (utils.EPSILON)


class ConvLayer(nn.Module):
    """Reflection-padded k×k convolution with bias (the authors' ConvLayer; weights under ``.conv2d``)."""

    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__()
        self.pad = k // 2
        self.conv2d = nn.Conv2d(c_in, c_out, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(F.pad(x, (self.pad,) * 4, mode="reflect"))


def soft_threshold(r: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
    """η_θ(r) = sign(r)·max(|r| − θ, 0), the proximal operator of θ‖·‖₁ (ISTA's shrinkage; notebook 10 §2).

    θ is a float, a tensor broadcastable to r, or — for feature maps r ``(B, C, H, W)`` — one value per
    channel as ``(1, C)`` (LRRNet's learned thresholds)."""
    if torch.is_tensor(theta) and theta.ndim == 2 and r.ndim == 4:
        theta = theta.view(1, -1, 1, 1)
    return torch.sign(r) * torch.clamp(r.abs() - theta, min=0)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Per-sample min-max to [0, 1): (x − min)/(max − min + 1e-5), as the official test code."""
    flat = x.flatten(1)
    lo = flat.min(1).values.view(-1, 1, 1, 1)
    hi = flat.max(1).values.view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo + EPS)


def check_pair(model: nn.Module, ir: torch.Tensor, vis: torch.Tensor) -> None:
    """The grey-pair contract of LRRNet-style models: non-empty ``(B, 1, H, W)`` batches of the
    model's float dtype (:func:`fusionlib.common.inputs.check_images`), of one shape, H, W ≥ 2
    (reflection padding); a ``ValueError`` names the model and the offending shapes otherwise."""
    check_images(model, ir=ir, vis=vis)
    name = type(model).__name__
    for arg, t in (("ir", ir), ("vis", vis)):
        if t.shape[1] != 1:
            raise ValueError(f"{name} takes {arg} as a grey (B, 1, H, W) tensor, got {tuple(t.shape)}")
    if ir.shape != vis.shape:
        raise ValueError(f"ir {tuple(ir.shape)} and vis {tuple(vis.shape)} differ in shape")
    if min(ir.shape[-2:]) < 2:
        raise ValueError(f"{name} needs H, W ≥ 2 for reflection padding, got {tuple(ir.shape)}")


class LLRRBlock(nn.Module):
    """One unfolded step Z_k = η_θ(λ_z·Z_{k−1} + W_dt ∗ (X − W_d ∗ Z_{k−1}))."""

    def __init__(self, n2: int, channels: int = 1, k: int = 3):
        super().__init__()
        self.conv_Wdz = ConvLayer(n2, channels, k)   # W_d: 2n → 1, the (learned) synthesis dictionary
        self.conv_Wdtz = ConvLayer(channels, n2, k)  # W_dt: 1 → 2n, its (learned) adjoint

    def forward(self, x: torch.Tensor, z: torch.Tensor, theta: torch.Tensor, lam_z: torch.Tensor) -> torch.Tensor:
        # x (B, 1, H, W), z (B, 2n, H, W): residual X − W_d∗Z, back-projected and added to λ_z·Z
        return soft_threshold(lam_z * z + self.conv_Wdtz(x - self.conv_Wdz(z)), theta)


class LLRREncoder(nn.Module):
    """Learned low-rank representation encoder: X ``(B, 1, H, W)`` -> (L, S), each ``(B, n, H, W)``."""

    def __init__(self, n: int = 128, blocks: int = 4, channels: int = 1, k: int = 3):
        super().__init__()
        self.n, self.blocks = n, blocks
        self.conv_W00 = ConvLayer(channels, 2 * n, k)           # W₀
        self.lamj = nn.Parameter(torch.rand(1, 2 * n))     # θ, U(0, 1) as in the authors' code
        self.lamz = nn.Parameter(torch.rand(1, 1))         # λ_z
        for i in range(blocks):
            self.add_module(f"lrrblock{i}", LLRRBlock(2 * n, channels, k))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = soft_threshold(self.conv_W00(x), self.lamj)    # Z₀
        for i in range(self.blocks):
            z = getattr(self, f"lrrblock{i}")(x, z, self.lamj, self.lamz)
        return z[:, : self.n], z[:, self.n:]


class CatDecoder(nn.Module):
    """The "cat" decoder: 4 convs n→1, then low = conv(cat(l_ir, l_vis)), high = conv(cat(s_ir, s_vis))."""

    def __init__(self, n: int = 128, channels: int = 1, k: int = 3):
        super().__init__()
        self.conv_ReZx, self.conv_ReUx = ConvLayer(n, channels, k), ConvLayer(n, channels, k)  # IR low / sparse
        self.conv_ReZy, self.conv_ReUy = ConvLayer(n, channels, k), ConvLayer(n, channels, k)  # VIS low / sparse
        self.conv_ReL = ConvLayer(2 * channels, channels, k)
        self.conv_ReH = ConvLayer(2 * channels, channels, k)

    def forward(self, l_ir, s_ir, l_vis, s_vis) -> dict[str, torch.Tensor]:
        low = self.conv_ReL(torch.cat([self.conv_ReZx(l_ir), self.conv_ReZy(l_vis)], 1))
        high = self.conv_ReH(torch.cat([self.conv_ReUx(s_ir), self.conv_ReUy(s_vis)], 1))
        return {"fused": low + high, "low": low, "high": high}


class LRRNet(nn.Module):
    """LRRNet: ``forward(ir, vis)`` with ``(B, 1, H, W)`` inputs min-max normalised to [0, 1]
    (:func:`normalise`); returns ``fused`` (unnormalised, same size) and the parts."""

    def __init__(self, n: int = 128, blocks: int = 4, k: int = 3):
        super().__init__()
        self.get_ls1 = LLRREncoder(n, blocks, 1, k)  # IR
        self.get_ls2 = LLRREncoder(n, blocks, 1, k)  # VIS
        self.decoder = CatDecoder(n, 1, k)

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> dict[str, torch.Tensor]:
        check_pair(self, ir, vis)
        l_ir, s_ir = self.get_ls1(ir)
        l_vis, s_vis = self.get_ls2(vis)
        out = self.decoder(l_ir, s_ir, l_vis, s_vis)
        out.update({"ir_low": l_ir, "ir_sparse": s_ir, "vis_low": l_vis, "vis_sparse": s_vis})
        return out


def load_official(path: str | Path | None = None, map_location: str | torch.device = "cpu") -> LRRNet:
    """The authors' released checkpoint in :class:`LRRNet`, in eval mode.

    ``path`` defaults to ``<weights root>/lrrnet/final_lrr_net_..._block_4.model``
    (:func:`fusionlib.paths.weights_root`). Loaded with ``weights_only=True`` and ``strict`` key and
    shape checks; a mismatch raises ``ValueError`` naming the offending keys.
    """
    path = weights_file(path, OFFICIAL_CHECKPOINT, "LRRNet checkpoint", f"download {OFFICIAL_URL} (218,515 bytes)")
    state = torch.load(path, map_location=map_location, weights_only=True)
    model = LRRNet()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}" if missing else "",
                 f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}" if unexpected else "",
                 "shape mismatch " + ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
                                               for k in wrong[:5]) if wrong else ""]
        raise ValueError(f"{path} is not an LRRNet (n=128, 4 blocks, cat) checkpoint: "
                         + "; ".join(p for p in parts if p))
    model.load_state_dict(state)
    return model.to(map_location).eval()


@torch.no_grad()
def fuse_official(model: LRRNet, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    """Fuse as the official test script does: min-max normalise both inputs, run the net, then
    min-max the output to [0, 255) and truncate to 8 bits (its CUDA path: no clamp first).

    Args:
        ir, vis: grey images ``(B, 1, H, W)`` on any scale (the official code reads 0–255 grey with
            ``cv2.IMREAD_GRAYSCALE``).

    Returns:
        ``(B, 1, H, W)`` uint8, what the official code writes to PNG.
    """
    fused = model(normalise(ir.float()), normalise(vis.float()))["fused"]
    scaled = normalise(fused) * 255
    return scaled.to(torch.uint8)  # astype('uint8') truncates


def rgb_fuser(net: nn.Module, device: str | torch.device | None = None) -> Callable:
    """``net`` (LRRNet, or a network with its interface such as LRCFuse: ``net(ir, y)["fused"]``) as
    ``(ir (B, 1, H, W), vis RGB (B, 3, H, W)) -> fused RGB``: min-max normalised inputs, the output
    min-max normalised as the official test script does, the visible chroma put back (JPEG YCbCr)."""
    net = net.to(device) if device is not None else net

    def fuse_y(ir: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return normalise(net(normalise(ir), normalise(y))["fused"]).clamp(0, 1)
    fuse_y.__name__ = type(net).__name__
    return fuse_rgb(fuse_y, "jpeg", device)


def released_fuser(device: str | torch.device = "cpu") -> Callable | None:
    """The authors' released LRRNet (:func:`load_official`) as an RGB fuser (:func:`rgb_fuser`), the
    learned baseline of every paper's table; ``None`` when the checkpoint is not under the weights root."""
    if not (weights_root() / OFFICIAL_CHECKPOINT).is_file():
        return None
    return rgb_fuser(load_official(map_location=device), device)
