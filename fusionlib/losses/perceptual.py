"""Perceptual-loss pieces: VGG-16 feature taps, Gram matrices, Sobel gradients.

LRRNet / LRCFuse convention (``shared/spec/reference-implementations.md`` §2.1, §2.3, §2.5): the
loss network is VGG-16 up to relu4_3 with taps ``relu1_2, relu2_2, relu3_3, relu4_3``; grey images
are replicated to 3 channels and fed **on 0–255 without mean/std normalisation** (the loss weights
were tuned on that scale). Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb``.

Pretrained weights are torchvision's ``vgg16`` IMAGENET1K_V1 (its ``features.0 … features.21`` are
exactly conv1_1 … conv4_3, the tensors LRRNet's own loader copies). They are never downloaded
unless asked (``download=True``): :func:`load_vgg16` looks for the file in torch's hub cache (or a
path you give) and otherwise fails with instructions. ``weights="random"`` builds an untrained network **only when asked**; the
module then has ``pretrained = False`` and everything produced with it must say so.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["VGG16_FILE", "VGG16_URL", "VGG16Features", "load_vgg16", "gram_matrix", "sobel_gradient"]

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's IMAGENET1K_V1 checkpoint name
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
# conv1_1 … conv4_3 as (in, out) channels, and their indices in torchvision's vgg16().features
_CONVS = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
          (256, 512), (512, 512), (512, 512)]
_TV_INDEX = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21]
_TAPS_AFTER = {1: "relu1_2", 3: "relu2_2", 6: "relu3_3", 9: "relu4_3"}  # conv index -> tap name
_POOL_AFTER = {1, 3, 6}


class VGG16Features(nn.Module):
    """VGG-16 conv1_1 … conv4_3 (ReLU after each, 2×2 max-pool after blocks 1–3), frozen.

    ``forward(x)`` with x ``(B, 1 or 3, H, W)`` on 0–255 returns ``[relu1_2, relu2_2, relu3_3, relu4_3]``
    at full, ½, ¼ and ⅛ resolution.
    """

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in _CONVS)
        self.pretrained = False
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen loss network never leaves eval mode

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"VGG16Features takes (B, 1 or 3, H, W) on 0–255, got {tuple(x.shape)}")
        h = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        taps = []
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            if i in _TAPS_AFTER:
                taps.append(h)
            if i in _POOL_AFTER:
                h = F.max_pool2d(h, 2, 2)
        return taps


def _from_state_dict(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Map a torchvision ``vgg16`` state dict (``features.N.*``), or any dict whose first 20 tensors
    are conv1_1 … conv4_3 in order (LRRNet's ``vgg16.pth``), to :class:`VGG16Features` keys."""
    if all(f"features.{i}.weight" in state for i in _TV_INDEX):
        tensors = [state[f"features.{i}.{p}"] for i in _TV_INDEX for p in ("weight", "bias")]
    else:
        tensors = list(state.values())[:20]
    out = {}
    for k, (c_in, c_out) in enumerate(_CONVS):
        w, b = (tensors[2 * k], tensors[2 * k + 1]) if 2 * k + 1 < len(tensors) else (None, None)
        if w is None or tuple(w.shape) != (c_out, c_in, 3, 3) or tuple(b.shape) != (c_out,):
            got = "nothing" if w is None else f"{tuple(w.shape)} / {tuple(b.shape)}"
            raise ValueError(f"{source}: tensor pair {k} should be conv {c_in}→{c_out} (weight ({c_out}, {c_in}, 3, 3)), "
                             f"got {got}; expected a torchvision vgg16 state dict")
        out[f"convs.{k}.weight"], out[f"convs.{k}.bias"] = w, b
    return out


def load_vgg16(weights: str = "imagenet", path: str | Path | None = None, download: bool = False) -> VGG16Features:
    """The frozen loss network.

    Args:
        weights: ``"imagenet"`` (pretrained; from ``path``, else torch's hub cache
            ``<torch.hub.get_dir()>/checkpoints/vgg16-397923af.pth``) or ``"random"`` (untrained:
            only for smoke runs that say so in their outputs).
        path: a torchvision ``vgg16`` state dict (or LRRNet's ``vgg16.pth``).
        download: when the file is not cached, let torchvision download it into the hub cache
            (needs internet; off by default so offline runs fail fast with instructions).

    Raises:
        FileNotFoundError: pretrained weights requested but not found (says how to get them).
    """
    model = VGG16Features()
    if weights == "random":
        return model
    if weights != "imagenet":
        raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
    file = Path(path) if path is not None else Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    if not file.is_file() and download and path is None:
        import torchvision
        torchvision.models.vgg16(weights=torchvision.models.VGG16_Weights.IMAGENET1K_V1)  # fills the cache
    if not file.is_file():
        raise FileNotFoundError(
            f"ImageNet VGG-16 weights not found at {file}. Get them with "
            f"`python -c \"import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')\"` on a machine "
            f"with internet (or download {VGG16_URL} into {file.parent}), or pass path=...; a smoke run may "
            "use weights='random', which labels its results as not pretrained")
    state = torch.load(file, map_location="cpu", weights_only=True)
    model.load_state_dict(_from_state_dict(state, str(file)))
    model.pretrained = True
    return model


def gram_matrix(phi: torch.Tensor) -> torch.Tensor:
    """Gram(φ) = φφᵀ/(C·H·W) per sample: ``(B, C, H, W)`` -> ``(B, C, C)`` (LRRNet's ``gram_matrix``)."""
    b, c, h, w = phi.shape
    flat = phi.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


_SOBEL_X = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def sobel_gradient(x: torch.Tensor) -> torch.Tensor:
    """∇x = |G_x ∗ x| + |G_y ∗ x| with 3×3 Sobel kernels and zero padding 1, per channel (spec's G)."""
    if x.ndim != 4:
        raise ValueError(f"sobel_gradient takes (B, C, H, W), got {tuple(x.shape)}")
    c = x.shape[1]
    k = torch.stack([_SOBEL_X, _SOBEL_X.T]).to(x)[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    g = F.conv2d(x, k, padding=1, groups=c).abs()
    return g[:, 0::2] + g[:, 1::2]
