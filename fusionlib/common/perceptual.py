"""Perceptual-loss pieces: VGG-16 / VGG-19 feature taps, Gram matrices, Sobel gradients.

LRRNet / LRCFuse convention (``shared/spec/reference-implementations.md`` §2.1, §2.3, §2.5): the
loss network is VGG-16 up to relu4_3 with taps ``relu1_2, relu2_2, relu3_3, relu4_3``; grey images
are replicated to 3 channels and fed **on 0–255 without mean/std normalisation** (the loss weights
were tuned on that scale). Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb``.

Pretrained weights are torchvision's ``vgg16`` IMAGENET1K_V1 (its ``features.0 … features.21`` are
exactly conv1_1 … conv4_3, the tensors LRRNet's own loader copies). They are never downloaded
unless asked (``download=True``): :func:`load_vgg16` looks for the file in torch's hub cache (or a
path you give) and otherwise fails with instructions. LDFusion's VGG-19 (:func:`load_vgg19`, taps
relu2_1, relu3_1, relu4_2 on 0–1 input, spec §4.2) loads the same way. ``weights="random"`` builds an untrained network **only when asked**; the
module then has ``pretrained = False`` and everything produced with it must say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["VGG16_FILE", "VGG16_URL", "VGG19_FILE", "VGG19_URL", "VGGFeatures", "VGG16Features", "VGG19Features",
           "load_vgg16", "load_vgg19", "gram_matrix", "sobel_gradient"]

VGG16_FILE = "vgg16-397923af.pth"  # torchvision's IMAGENET1K_V1 checkpoint names
VGG16_URL = f"https://download.pytorch.org/models/{VGG16_FILE}"
VGG19_FILE = "vgg19-dcbb9e9d.pth"
VGG19_URL = f"https://download.pytorch.org/models/{VGG19_FILE}"


@dataclass(frozen=True)
class _Arch:
    """The convolutions a loss needs, their indices in torchvision's ``features``, the (post-ReLU) taps
    and the max-pools, each by conv index."""
    name: str
    convs: tuple[tuple[int, int], ...]
    tv_index: tuple[int, ...]
    taps: dict
    pools: frozenset
    file: str
    url: str


# LRRNet / LRCFuse: VGG-16 conv1_1 … conv4_3, taps relu1_2, relu2_2, relu3_3, relu4_3
_VGG16 = _Arch("vgg16", ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                         (256, 512), (512, 512), (512, 512)), (0, 2, 5, 7, 10, 12, 14, 17, 19, 21),
               {1: "relu1_2", 3: "relu2_2", 6: "relu3_3", 9: "relu4_3"}, frozenset({1, 3, 6}), VGG16_FILE, VGG16_URL)
# LDFusion: VGG-19 conv1_1 … conv4_2 (torchvision indices 0 … 21), taps after conv2_1, conv3_1, conv4_2 — the code
# reads the conv outputs, which torchvision's in-place ReLU overwrites, so the compared features are post-ReLU
_VGG19 = _Arch("vgg19", ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                         (256, 256), (256, 512), (512, 512)), (0, 2, 5, 7, 10, 12, 14, 16, 19, 21),
               {2: "relu2_1", 4: "relu3_1", 9: "relu4_2"}, frozenset({1, 3, 7}), VGG19_FILE, VGG19_URL)
_CONVS, _TV_INDEX = _VGG16.convs, _VGG16.tv_index  # VGG-16's, kept for the LRRNet-layout loader and its tests


class VGGFeatures(nn.Module):
    """A frozen VGG trunk returning its post-ReLU taps (3×3 convolutions with ReLU, 2×2 max-pools).

    ``forward(x)`` with x ``(B, 1 or 3, H, W)`` (grey is replicated) returns the taps in order; the
    input scale is the caller's convention (LRRNet: 0–255; LDFusion: 0–1), with no normalisation.
    """

    def __init__(self, arch: _Arch = _VGG16):
        super().__init__()
        self.arch = arch
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in arch.convs)
        self.pretrained = False
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen loss network never leaves eval mode

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"{type(self).__name__} takes (B, 1 or 3, H, W), got {tuple(x.shape)}")
        h = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
        taps = []
        for i, conv in enumerate(self.convs):
            h = F.relu(conv(h))
            if i in self.arch.taps:
                taps.append(h)
            if i in self.arch.pools:
                h = F.max_pool2d(h, 2, 2)
        return taps


class VGG16Features(VGGFeatures):
    """VGG-16 conv1_1 … conv4_3 → ``[relu1_2, relu2_2, relu3_3, relu4_3]`` at 1, ½, ¼, ⅛ resolution (LRRNet)."""

    def __init__(self):
        super().__init__(_VGG16)


class VGG19Features(VGGFeatures):
    """VGG-19 conv1_1 … conv4_2 → ``[relu2_1, relu3_1, relu4_2]`` at ½, ¼, ⅛ resolution (LDFusion)."""

    def __init__(self):
        super().__init__(_VGG19)


def _from_state_dict(state: dict[str, torch.Tensor], source: str, arch: _Arch = _VGG16) -> dict[str, torch.Tensor]:
    """Map a torchvision ``vgg16``/``vgg19`` state dict (``features.N.*``), or any dict whose first
    tensors are the convolutions in order (LRRNet's ``vgg16.pth``), to :class:`VGGFeatures` keys."""
    n = len(arch.convs)
    if all(f"features.{i}.weight" in state for i in arch.tv_index):
        tensors = [state[f"features.{i}.{p}"] for i in arch.tv_index for p in ("weight", "bias")]
    else:
        tensors = list(state.values())[:2 * n]
    out = {}
    for k, (c_in, c_out) in enumerate(arch.convs):
        w, b = (tensors[2 * k], tensors[2 * k + 1]) if 2 * k + 1 < len(tensors) else (None, None)
        if w is None or tuple(w.shape) != (c_out, c_in, 3, 3) or tuple(b.shape) != (c_out,):
            got = "nothing" if w is None else f"{tuple(w.shape)} / {tuple(b.shape)}"
            raise ValueError(f"{source}: tensor pair {k} should be conv {c_in}→{c_out} (weight ({c_out}, {c_in}, 3, 3)), "
                             f"got {got}; expected a torchvision {arch.name} state dict")
        out[f"convs.{k}.weight"], out[f"convs.{k}.bias"] = w, b
    return out


def _load(model: VGGFeatures, weights: str, path: str | Path | None, download: bool) -> VGGFeatures:
    arch = model.arch
    if weights == "random":
        return model
    if weights != "imagenet":
        raise ValueError(f"weights must be 'imagenet' or 'random', got {weights!r}")
    file = Path(path) if path is not None else Path(torch.hub.get_dir()) / "checkpoints" / arch.file
    if not file.is_file() and download and path is None:
        import torchvision
        getattr(torchvision.models, arch.name)(weights="IMAGENET1K_V1")  # fills the cache
    if not file.is_file():
        raise FileNotFoundError(
            f"ImageNet {arch.name.upper()} weights not found at {file}. Get them with "
            f"`python -c \"import torchvision; torchvision.models.{arch.name}(weights='IMAGENET1K_V1')\"` on a machine "
            f"with internet (or download {arch.url} into {file.parent}), or pass path=...; a smoke run may "
            "use weights='random', which labels its results as not pretrained")
    state = torch.load(file, map_location="cpu", weights_only=True)
    model.load_state_dict(_from_state_dict(state, str(file), arch))
    model.pretrained = True
    return model


def load_vgg16(weights: str = "imagenet", path: str | Path | None = None, download: bool = False) -> VGG16Features:
    """The frozen LRRNet/LRCFuse loss network.

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
    return _load(VGG16Features(), weights, path, download)


def load_vgg19(weights: str = "imagenet", path: str | Path | None = None, download: bool = False) -> VGG19Features:
    """The frozen LDFusion feature-fidelity network (torchvision ``vgg19`` IMAGENET1K_V1,
    ``vgg19-dcbb9e9d.pth``); arguments and errors as :func:`load_vgg16`."""
    return _load(VGG19Features(), weights, path, download)


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
