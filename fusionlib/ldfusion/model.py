"""LDFusion's fusion network (Wang et al., ACM MM 2025; docs/ldfusion.md#network): a MUNIT-style content/style
encoder per modality and an AdaIN decoder (the paper's FFM), built as the official code builds it so
that its released ``Enc_final.pt`` / ``Dec_final.pt`` state dicts fit.

- :class:`ContentEncoder`: 7×7 stem and three 4×4 stride-2 downsamplers with instance norm, then two
  residual blocks (the stem and the blocks pad by reflection, the downsamplers with zeros, as the code) → a 128-channel
  code at ⌊H/8⌋×⌊W/8⌋ (the paper says "three convolution blocks").
- :class:`StyleEncoder`: four convolutions, global average pooling, 1×1 → an 8-d style code.
- :class:`Encoder`: one content and one style encoder per modality (1,742,736 parameters).
- :class:`Decoder`: an MLP maps the 16-d joint style to the 2,048 AdaIN parameters of two residual
  blocks; three 5×5 stride-2 transposed convolutions with layer norm; a 7×7 head, tanh, clamp to
  [0, 1], crop to the input size (4,034,241 parameters).
- :class:`LDFusion`: ``(ir, vis_y) -> fused_y``, any input size ≥ 16×16.

Images are grey ``(B, 1, H, W)`` in [0, 1]: IR and the Y of OpenCV's YCrCb for VIS.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from fusionlib.common.complexity import count_parameters  # re-exported for notebook 41
from fusionlib.common.inputs import check_images

__all__ = ["ContentEncoder", "StyleEncoder", "Encoder", "AdaIN", "LayerNorm", "Decoder", "LDFusion", "count_parameters"]


def _conv(cin: int, cout: int, k: int, pad: int) -> nn.Sequential:
    """Reflection padding then a convolution (the code's stems, residual blocks and head)."""
    return nn.Sequential(nn.ReflectionPad2d(pad), nn.Conv2d(cin, cout, k))


def _down(cin: int, cout: int) -> nn.Conv2d:
    """A 4×4 stride-2 convolution with zero padding 1: the code's downsamplers pad with zeros, not by
    reflection as MUNIT's (the border pixels of every scale depend on it)."""
    return nn.Conv2d(cin, cout, 4, 2, 1)


class _ResBlock(nn.Module):
    """x + [pad, conv3×3, norm, ReLU, pad, conv3×3, norm](x); ``norm`` is IN or AdaIN."""

    def __init__(self, dim: int, norm: type[nn.Module]):
        super().__init__()
        self.body = nn.Sequential(_conv(dim, dim, 3, pad=1), norm(dim), nn.ReLU(inplace=True),
                                  _conv(dim, dim, 3, pad=1), norm(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _instance_norm(dim: int) -> nn.Module:
    return nn.InstanceNorm2d(dim, affine=False)


class ContentEncoder(nn.Sequential):
    """1 → 16 → 32 → 64 → 128 channels at 1, ½, ¼, ⅛ scale, instance norm + ReLU, two residual blocks.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self, dim: int = 16, n_down: int = 3, n_res: int = 2):
        layers = [_conv(1, dim, 7, pad=3), _instance_norm(dim), nn.ReLU(inplace=True)]
        for _ in range(n_down):
            layers += [_down(dim, 2 * dim), _instance_norm(2 * dim), nn.ReLU(inplace=True)]
            dim *= 2
        layers += [_ResBlock(dim, _instance_norm) for _ in range(n_res)]
        super().__init__(*layers)
        self.out_dim = dim


class StyleEncoder(nn.Sequential):
    """Convolutions without normalisation, global average pooling, 1×1 → a ``style_dim`` vector.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self, dim: int = 16, n_down: int = 3, style_dim: int = 8):
        layers = [_conv(1, dim, 7, pad=3), nn.ReLU(inplace=True)]
        for _ in range(2):
            layers += [_down(dim, 2 * dim), nn.ReLU(inplace=True)]
            dim *= 2
        for _ in range(n_down - 2):
            layers += [_down(dim, dim), nn.ReLU(inplace=True)]
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1)]
        super().__init__(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).flatten(1)


class Encoder(nn.Module):
    """Separate content and style encoders for VIS and IR (the code's ``Encoder``).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self):
        super().__init__()
        self.content = nn.ModuleDict({m: ContentEncoder() for m in ("vis", "ir")})
        self.style = nn.ModuleDict({m: StyleEncoder() for m in ("vis", "ir")})

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint content ``cat(c_vis, c_ir)`` (B, 256, H/8, W/8) and style ``cat(s_vis, s_ir)`` (B, 16)."""
        content = torch.cat([self.content["vis"](vis), self.content["ir"](ir)], 1)
        style = torch.cat([self.style["vis"](vis), self.style["ir"](ir)], 1)
        return content, style


class AdaIN(nn.Module):
    """Adaptive instance norm: instance statistics (ε = 1e-5), then the per-sample ``weight`` (γ) and
    ``bias`` (β) the decoder's MLP assigns before each forward pass; γ is used raw (no + 1).
    ``running_mean``/``running_var`` exist for state-dict compatibility with the code and are unused.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaIN parameters are unset: the decoder assigns them from the style code")
        mean = x.mean((2, 3), keepdim=True)
        var = x.var((2, 3), keepdim=True, unbiased=False)
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight[..., None, None] + self.bias[..., None, None]


class LayerNorm(nn.Module):
    """MUNIT's layer norm: per-sample mean and unbiased std over (C, H, W), (x − μ)/(σ + ε), then a
    per-channel γ (initialised U(0, 1)) and β (0).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.rand(dim))
        self.beta = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        mean, std = flat.mean(1).view(-1, 1, 1, 1), flat.std(1).view(-1, 1, 1, 1)
        return (x - mean) / (std + self.eps) * self.gamma.view(1, -1, 1, 1) + self.beta.view(1, -1, 1, 1)


class Decoder(nn.Module):
    """FFM: AdaIN residual blocks driven by the joint style, three upsamplers, a 7×7 head.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self, dim: int = 256, n_up: int = 3, n_res: int = 2, style_dim: int = 16, mlp_dim: int = 256):
        super().__init__()
        self.res = nn.Sequential(*(_ResBlock(dim, AdaIN) for _ in range(n_res)))
        ups = []
        for _ in range(n_up):
            ups += [nn.ConvTranspose2d(dim, dim // 2, 5, stride=2, padding=0), LayerNorm(dim // 2), nn.ReLU(inplace=True)]
            dim //= 2
        self.up = nn.Sequential(*ups)
        self.head = nn.Sequential(_conv(dim, 1, 7, pad=3), nn.Tanh())
        self.adain = [m for m in self.res.modules() if isinstance(m, AdaIN)]
        self.mlp = nn.Sequential(nn.Linear(style_dim, mlp_dim), nn.ReLU(inplace=True), nn.Linear(mlp_dim, mlp_dim),
                                 nn.ReLU(inplace=True), nn.Linear(mlp_dim, 2 * sum(m.dim for m in self.adain)))

    def assign(self, style: torch.Tensor) -> None:
        """Split the MLP's output over the AdaIN layers in module order: per layer β, then γ."""
        params = self.mlp(style)
        for m in self.adain:
            m.bias, m.weight = params[:, :m.dim], params[:, m.dim:2 * m.dim]
            params = params[:, 2 * m.dim:]

    def forward(self, content: torch.Tensor, style: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        self.assign(style)
        out = self.head(self.up(self.res(content))).clamp(0, 1)
        return out[..., :size[0], :size[1]]


def _init_weights(module: nn.Module) -> None:
    """The code's initialisation: every (transposed) convolution's weight ~ N(0, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)


class LDFusion(nn.Module):
    """``(ir, vis_y)`` ``(B, 1, H, W)`` in [0, 1], any size ≥ 16×16 → fused Y ``(B, 1, H, W)`` in [0, 1].

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """

    def __init__(self):
        super().__init__()
        self.encoder, self.decoder = Encoder(), Decoder()
        _init_weights(self)

    def forward(self, ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
        check_images(self, ir=ir, vis=vis)
        if ir.shape != vis.shape or ir.ndim != 4 or ir.shape[1] != 1:
            raise ValueError(f"LDFusion takes IR and the visible Y as (B, 1, H, W) of one size, got "
                             f"{tuple(ir.shape)} and {tuple(vis.shape)}")
        if min(ir.shape[-2:]) < 16:
            raise ValueError(f"LDFusion needs images of at least 16×16 (three stride-2 stages, then instance norm), got {tuple(ir.shape[-2:])}")
        content, style = self.encoder(ir, vis)
        return self.decoder(content, style, tuple(ir.shape[-2:]))
