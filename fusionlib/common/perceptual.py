"""Perceptual-loss pieces: VGG-16 / VGG-19 feature taps, Gram matrices, Sobel gradients.

LRRNet / LRCFuse convention (``docs/lrcfuse.md#lrrnet, docs/lrcfuse.md#loss``): the
loss network is VGG-16 up to relu4_3 with taps ``relu1_2, relu2_2, relu3_3, relu4_3``; grey images
are replicated to 3 channels and fed **on 0–255 without mean/std normalisation** (the loss weights
were tuned on that scale). Derived in ``notebooks/12_lrcfuse_training_and_tables.ipynb``.

Pretrained weights are torchvision's ``vgg16`` IMAGENET1K_V1 (its ``features.0 … features.21`` are
exactly conv1_1 … conv4_3, the tensors LRRNet's own loader copies). They are never downloaded
unless asked (``download=True``): :func:`load_vgg16` looks for the file in torch's hub cache (or a
path you give) and otherwise fails with instructions. LDFusion's VGG-19 (:func:`load_vgg19`, taps
relu2_1, relu3_1, relu4_2 on 0–1 input, docs/ldfusion.md#language-driven-loss) loads the same way.
``weights="random"`` builds an untrained network **only when asked**; the
module then has ``pretrained = False`` and everything produced with it must say so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from fusionlib.common.offline import require_host
from fusionlib.paths import weights_file

__all__ = ["VGG16_FILE", "VGG16_URL", "VGG19_FILE", "VGG19_URL", "VGGFeatures", "VGG16Features", "VGG19Features",
           "load_vgg16", "load_vgg19", "NORMALISED_FILE", "NORMALISED_TAPS", "NormalisedVGG19", "load_vgg19_normalised",
           "loss_network", "gram_matrix", "sobel_gradient"]

IMAGENET_STD = (0.229, 0.224, 0.225)  # RGB: torchvision's normalisation, which LDFusion's trainer leaves out
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


class _FrozenTrunk(nn.Module):
    """A loss network: no gradients to its weights, always in eval mode, ``pretrained`` says whether
    its weights are real; input ``(B, 1 or 3, H, W)`` with grey replicated to three channels."""

    def _freeze(self) -> None:
        self.pretrained = False
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # a frozen loss network never leaves eval mode

    def _rgb(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"{type(self).__name__} takes (B, 1 or 3, H, W), got {tuple(x.shape)}")
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


class VGGFeatures(_FrozenTrunk):
    """A frozen VGG trunk returning its post-ReLU taps (3×3 convolutions with ReLU, 2×2 max-pools).

    ``forward(x)`` with x ``(B, 1 or 3, H, W)`` (grey is replicated) returns the taps in order; the
    input scale is the caller's convention (LRRNet: 0–255; LDFusion: 0–1), with no normalisation.
    """

    def __init__(self, arch: _Arch = _VGG16):
        super().__init__()
        self.arch = arch
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1) for i, o in arch.convs)
        self._freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self._rgb(x)
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
    if path is not None and not isinstance(path, (str, Path)):
        raise TypeError(f"load_{arch.name}: path must be a file path (str or Path), got {type(path).__name__}")
    file = Path(path) if path is not None else Path(torch.hub.get_dir()) / "checkpoints" / arch.file
    failed = ""
    if not file.is_file() and download and path is None:
        try:
            require_host(arch.url)
            import torchvision
            getattr(torchvision.models, arch.name)(weights="IMAGENET1K_V1")  # fills the cache
        except OSError as exc:  # ConnectionError, URLError, a cut transfer: the same instructions
            failed = f"download=True failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). "
    if not file.is_file():
        raise FileNotFoundError(
            f"{failed}ImageNet {arch.name.upper()} weights not found at {file}. Get them with "
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


# ------------------------------------------------------------------ the real ImageNet VGG-19 we have

NORMALISED_FILE = Path("vgg19_normalised") / "vgg_normalised_conv3_1.pth"  # under $FUSIONLIB_WEIGHTS
# post-ReLU taps of the "normalised" VGG-19 by their index in its nn.Sequential (see NormalisedVGG19)
class UnnormalisedInput(nn.Module):
    """:class:`NormalisedVGG19`'s layer 0 under the ``"unnormalised"`` convention: RGB → BGR × 255·s
    (s: ImageNet's std), no mean subtracted — the image LDFusion's code shows its VGG-19."""

    def __init__(self):
        super().__init__()
        self.register_buffer("gain", 255.0 * torch.tensor(IMAGENET_STD[::-1]).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(1) * self.gain.to(x.dtype)


NORMALISED_TAPS = {"relu1_1": 3, "relu1_2": 6, "relu2_1": 10, "relu2_2": 13, "relu3_1": 17}


class NormalisedVGG19(_FrozenTrunk):
    """The real ImageNet VGG-19 in its "normalised" form (Gatys et al.; the encoder of WCT/AdaIN style
    transfer), truncated after conv3_1: every filter is rescaled so that its mean ImageNet activation
    is 1, which multiplies each feature map by a positive constant and changes nothing else.

    Layout (the state dict's ``nn.Sequential`` indices): ``0`` a 1×1 conv that folds Caffe's
    preprocessing, RGB [0, 1] → BGR 0–255 minus (103.939, 116.779, 123.680); then conv1_1 ``2``,
    conv1_2 ``5``, conv2_1 ``9``, conv2_2 ``12``, conv3_1 ``16``, each 3×3 after a ReflectionPad2d(1),
    each followed by a ReLU (3, 6, 10, 13, 17); MaxPool2d(2, 2, ceil_mode=True) at 7 and 14.

    ``forward(x)``: x ``(B, 1 or 3, H, W)`` RGB (grey is replicated) on ``[0, input_scale]``
    (LRRNet's losses feed 0–255: ``input_scale=255``); returns the ``taps`` in the order asked, any of
    :data:`NORMALISED_TAPS`, a name may repeat (LRCFuse's stand-in uses relu3_1 twice).

    ``convention``: how the input is prepared, as the paper's code prepares it for its own network:

    - ``"imagenet"``: the image as the network was trained to see it (layer ``0``: BGR 0–255 minus
      Caffe's mean, what torchvision's ImageNet normalisation does for its VGG);
    - ``"unnormalised"``: LDFusion's trainer feeds 0–1 grey to torchvision's VGG-19 *without* that
      normalisation, so its network sees the image m + s·x (m, s: ImageNet's mean and std). The same
      image after this network's own preprocessing is 255·s·x in BGR, no mean subtracted: layer ``0``
      is replaced by that (docs/ldfusion.md#loss-networks-we-have). Dark pixels then give near-zero
      input, where the ImageNet convention gives −124. LRRNet's trainer feeds 0–255 grey to VGG-16 the
      same way: with ``input_scale=1`` the network sees 255·s·X for X on 0–255
      (docs/lrcfuse.md#loss-network-we-have).
    """

    INPUT_CONVENTIONS = ("imagenet", "unnormalised")

    def __init__(self, taps: tuple[str, ...] = ("relu2_1", "relu3_1"), input_scale: float = 1.0,
                 convention: str = "imagenet"):
        super().__init__()
        unknown = [t for t in taps if t not in NORMALISED_TAPS]
        if unknown or not taps:
            raise ValueError(f"taps must be among {list(NORMALISED_TAPS)} (this VGG-19 stops at conv3_1), got {list(taps)}")
        if convention not in self.INPUT_CONVENTIONS:
            raise ValueError(f"convention must be one of {self.INPUT_CONVENTIONS}, got {convention!r}")
        self.taps, self.input_scale, self.convention = tuple(taps), float(input_scale), convention
        self.unnormalised = UnnormalisedInput()  # layer 0 under the "unnormalised" convention
        pad = lambda: nn.ReflectionPad2d(1)  # noqa: E731
        relu = lambda: nn.ReLU()  # noqa: E731 - not in place: taps are read after it
        pool = lambda: nn.MaxPool2d(2, 2, ceil_mode=True)  # noqa: E731
        self.body = nn.Sequential(
            nn.Conv2d(3, 3, 1),
            pad(), nn.Conv2d(3, 64, 3), relu(), pad(), nn.Conv2d(64, 64, 3), relu(), pool(),
            pad(), nn.Conv2d(64, 128, 3), relu(), pad(), nn.Conv2d(128, 128, 3), relu(), pool(),
            pad(), nn.Conv2d(128, 256, 3), relu())
        self._freeze()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h = self._rgb(x) / self.input_scale
        last = max(NORMALISED_TAPS[t] for t in self.taps)
        seen = {}
        for i, layer in enumerate(self.body):
            h = self.unnormalised(h) if i == 0 and self.convention == "unnormalised" else layer(h)
            seen[i] = h
            if i == last:
                break
        return [seen[NORMALISED_TAPS[t]] for t in self.taps]


def load_vgg19_normalised(taps: tuple[str, ...] = ("relu2_1", "relu3_1"), input_scale: float = 1.0,
                          path: str | Path | None = None, convention: str = "imagenet") -> NormalisedVGG19:
    """:class:`NormalisedVGG19` with the real weights from ``path``, else
    ``$FUSIONLIB_WEIGHTS/vgg19_normalised/vgg_normalised_conv3_1.pth``.

    Raises:
        FileNotFoundError: the file is absent (says where it is expected and where it comes from).
        ValueError: the file is not this network's state dict (names the key or shape).
    """
    file = weights_file(path, NORMALISED_FILE, "normalised VGG-19 weights",
                        "it is vgg_normalised_conv3_1.pth of the style-transfer literature (jkbehne/GOTStyleTranfer, "
                        "models/); the sample weights beside this checkout are in ../shared/weights")
    model = NormalisedVGG19(taps, input_scale, convention)
    state = torch.load(file, map_location="cpu", weights_only=True)
    expected = {f"body.{k}": v.shape for k, v in model.body.state_dict().items()}
    got = {f"body.{k}": v for k, v in state.items()} if isinstance(state, dict) else {}
    problems = sorted(set(expected) ^ set(got)) or [k for k in expected if got[k].shape != expected[k]]
    if problems:
        raise ValueError(f"{file}: not the normalised VGG-19 up to conv3_1 (first mismatch: {problems[0]})")
    model.load_state_dict(got)
    model.pretrained = True
    return model


def loss_network(paper: str, policy: str = "auto", *, allow_random: bool = False, download: bool = False,
                 convention: str = "imagenet"):
    """The frozen loss network of ``paper`` (``"lrcfuse"``/``"lrrnet"`` or ``"ldfusion"``), and a label
    saying exactly what it is, for every table that uses it.

    ``policy``:
      - ``"imagenet"``: the paper's network (torchvision VGG-16 / VGG-19 ImageNet); fails when absent;
      - ``"normalised"``: the real normalised VGG-19 (:func:`load_vgg19_normalised`) with the taps that
        exist: LRRNet/LRCFuse relu1_2, relu2_2 kept, relu3_3 → relu3_1, and relu4_3 (the Gram "deep"
        term) → relu3_1's Gram, a labelled stand-in; LDFusion relu2_1, relu3_1 real, relu4_2 dropped;
      - ``"auto"``: ``"imagenet"`` when its weights are cached, else ``"normalised"``, else (only with
        ``allow_random=True``, which smoke profiles set) ``"random"``;
      - ``"random"``: an untrained VGG of the paper's layout (smoke runs and tests only, labelled).

    ``convention``: how the normalised VGG-19 sees its input (:class:`NormalisedVGG19`):

    - ``"imagenet"`` (the default): as the network was trained, mean-subtracted 0–255 BGR;
    - ``"unnormalised"``: as the paper's code feeds its own VGG. LRRNet/LRCFuse: 0–255 grey with no
      normalisation, so the stand-in sees the image their VGG-16 sees; every term of the loss then acts, at a
      feature scale c that is not known (c = 1: docs/lrcfuse.md#the-rule-notebook-12-trains-with). LDFusion: 0–1 grey, no normalisation (docs/ldfusion.md).

    It applies to the normalised network (``"normalised"``, and ``"auto"`` when it falls back to it). The paper's
    own networks are always fed as the paper's code feeds them, which is what ``"unnormalised"`` asks of the
    stand-in, and a random network has no convention: there it changes nothing.

    Returns ``(module, label)``; ``module.pretrained`` says whether its weights are real.
    """
    if paper not in ("lrcfuse", "lrrnet", "ldfusion"):
        raise ValueError(f"loss_network: paper must be 'lrcfuse', 'lrrnet' or 'ldfusion', got {paper!r}")
    if policy not in ("auto", "imagenet", "normalised", "random"):
        raise ValueError(f"loss_network: policy must be auto | imagenet | normalised | random, got {policy!r}")
    vgg16 = paper != "ldfusion"
    if convention not in NormalisedVGG19.INPUT_CONVENTIONS:
        raise ValueError(f"loss_network: convention must be one of {NormalisedVGG19.INPUT_CONVENTIONS}, got {convention!r}")
    loader, name = (load_vgg16, "VGG-16") if vgg16 else (load_vgg19, "VGG-19")
    if policy == "random":
        return loader("random"), f"random-init {name} (not pretrained: smoke/tests only)"
    if policy in ("imagenet", "auto"):
        try:
            return loader("imagenet", download=download), f"ImageNet {name} (torchvision), the paper's taps"
        except FileNotFoundError:
            if policy == "imagenet":
                raise
    try:
        if vgg16:  # the losses feed 0–255 grey: the authors' convention takes it as is, ImageNet's as 0–1 ×255
            authors = convention == "unnormalised"
            net = load_vgg19_normalised(("relu1_2", "relu2_2", "relu3_1", "relu3_1"), input_scale=1.0 if authors else 255.0,
                                        convention=convention)
            return net, ("real ImageNet VGG-19 (normalised) for VGG-16: relu1_2, relu2_2 kept; relu3_3 → relu3_1; "
                         "Gram term on relu3_1 as a stand-in for relu4_3"
                         + ("; fed 0–255 grey without normalisation, as the authors' code feeds VGG-16" if authors else ""))
        net = load_vgg19_normalised(("relu2_1", "relu3_1"), input_scale=1.0, convention=convention)
        return net, ("real ImageNet VGG-19 (normalised): relu2_1, relu3_1; relu4_2 unavailable (dropped)"
                     + ("; fed 0–1 grey without normalisation, as the authors' code" if convention == "unnormalised" else ""))
    except FileNotFoundError as err:
        if policy == "auto" and allow_random:
            return loader("random"), f"random-init {name} (no ImageNet {name} or normalised VGG-19 found: not pretrained)"
        if policy == "auto":
            raise FileNotFoundError(f"no pretrained loss network for {paper}: ImageNet {name} is not cached and {err}") from None
        raise


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
