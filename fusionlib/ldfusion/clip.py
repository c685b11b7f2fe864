"""LDFusion's language-driven loss in CLIP space (paper Eq. 3, 7, 17; docs/ldfusion.md#language-driven-loss).

With unit-normalised CLIP embeddings of the visible, infrared and fused images (e_vis, e_ir, e_f)
and of three texts (t_vis = "a visible gray image", t_ir = "an infrared image", t_f = "a clear
image with detailed background and salient objects"), the text directions are
ΔT_vis = n(t_f − t_vis), ΔT_ir = n(t_f − t_ir) and

- :func:`directional_loss` (Eq. 3): L_dir(e) = ½(1 − cos(n(e − e_vis), ΔT_vis)) + ½(1 − cos(n(e − e_ir), ΔT_ir));
- :func:`direction_regulariser` Φ (Eq. 7): (1 − cos(e_f, e_vis)) + (1 − cos(e_f, e_ir)). Minimising it
  pulls e_f *towards* both sources; the paper's prose says it maximises the angles — the formula and
  the code do the opposite, and we implement the formula (notebook 40 shows it);
- :func:`entropy` and the patch filter (Eq. 17): a patch counts only if both its VIS and IR crops
  have more than σ = 6 bits of entropy;
- :func:`sample_patches`: 32 rounds per step, one random crop (side ⌊224·U(0.5, 0.8)⌋) and one random
  affine per round, shared by VIS, IR and fused and by every sample of the batch, resized to 224;
- :func:`clip_preprocess` and :func:`load_clip`: OpenAI CLIP ViT-B/32 through ``open_clip``, frozen,
  in eval mode; with no weights, a clear error — or, only when asked, a random-init model whose
  results must be labelled "random-init CLIP — not a reproduction".

Images are grey ``(B, 1, H, W)`` in [0, 1]; embeddings ``(B, D)``.
"""

from __future__ import annotations

import difflib
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from fusionlib.common.offline import require_host

__all__ = ["TEXTS", "CLIP_MEAN", "CLIP_STD", "directional_loss", "direction_regulariser", "entropy", "patch_mask",
           "sample_patches", "clip_preprocess", "load_clip", "text_directions"]

TEXTS = {"vis": "a visible gray image", "ir": "an infrared image",
         "fused": "a clear image with detailed background and salient objects"}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _n(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=-1)


def directional_loss(e: torch.Tensor, e_vis: torch.Tensor, e_ir: torch.Tensor, dt_vis: torch.Tensor,
                     dt_ir: torch.Tensor) -> torch.Tensor:
    """Eq. 3 per sample ``(B,)``: how well the image-space moves from each source to ``e`` align with
    the text-space moves from that source's description to the fused one.

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §2.
    """
    cos_vis = (_n(e - e_vis) * _n(dt_vis)).sum(-1)
    cos_ir = (_n(e - e_ir) * _n(dt_ir)).sum(-1)
    return 0.5 * (1 - cos_vis) + 0.5 * (1 - cos_ir)


def direction_regulariser(e_f: torch.Tensor, e_vis: torch.Tensor, e_ir: torch.Tensor) -> torch.Tensor:
    """Φ (Eq. 7) per sample: (1 − cos(e_f, e_vis)) + (1 − cos(e_f, e_ir)); 0 when e_f points where both
    sources point — minimising it pulls the fused embedding towards the sources.

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §3.
    """
    return (1 - (_n(e_f) * _n(e_vis)).sum(-1)) + (1 - (_n(e_f) * _n(e_ir)).sum(-1))


def entropy(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Shannon entropy in bits of each image's 256-bin histogram on [0, 1], ``(B,)`` (no gradient).

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §4.
    """
    flat = x.detach().flatten(1).clamp(0, 1)
    idx = (flat * bins).long().clamp_max(bins - 1)
    counts = torch.zeros(flat.shape[0], bins, device=x.device, dtype=flat.dtype).scatter_add_(1, idx, torch.ones_like(flat))
    p = counts / counts.sum(1, keepdim=True)
    return -(p * torch.log2(p.clamp_min(1e-12))).sum(1)


def patch_mask(vis_patches: torch.Tensor, ir_patches: torch.Tensor, sigma: float = 6.0) -> torch.Tensor:
    """Eq. 17's filter as the code applies it: 1 where both the VIS and the IR patch have more than
    ``sigma`` bits of entropy, else 0 (masked patches still count in the mean's denominator).

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §4.
    """
    return ((entropy(vis_patches) > sigma) & (entropy(ir_patches) > sigma)).float()


def sample_patches(images: list[torch.Tensor], rounds: int = 32, size: int = 224,
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """Random patches of several aligned image batches, ``rounds × B`` each, resized to ``size``.

    Per round one crop side s = ⌊m·U(0.5, 0.8)⌋ with m = min(H, W, ``size``) (the code trains on
    224² crops with ``size`` 224, so m = 224 there: patches of 112–179 px; a smaller training crop
    keeps the same proportions instead of making every patch the whole crop) and a position, then one affine (rotation ±5°,
    vertical translation up to 10 %, scale 1–1.5, shear ±5°, nearest, fill 0), the same for every
    image list entry (VIS, IR, fused) and every sample (the code's shared parameters).

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §4.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF
    b, _, h, w = images[0].shape
    if any(x.shape[0] != b or x.shape[-2:] != (h, w) for x in images):
        raise ValueError(f"sample_patches needs aligned batches, got {[tuple(x.shape) for x in images]}")
    out: list[list[torch.Tensor]] = [[] for _ in images]

    def u(lo, hi):
        return lo + (hi - lo) * float(torch.rand((), generator=generator))
    for _ in range(rounds):
        s = max(1, int(min(h, w, size) * u(0.5, 0.8)))
        top = int(torch.randint(0, h - s + 1, (), generator=generator))
        left = int(torch.randint(0, w - s + 1, (), generator=generator))
        angle, ty, scale, shear = u(-5, 5), u(-0.1, 0.1) * s, u(1.0, 1.5), u(-5, 5)
        for k, x in enumerate(images):
            p = x[..., top:top + s, left:left + s]
            p = TF.affine(p, angle=angle, translate=[0.0, ty], scale=scale, shear=[shear, 0.0],
                          interpolation=InterpolationMode.NEAREST, fill=0.0)
            out[k].append(F.interpolate(p, size=(size, size), mode="bilinear", align_corners=False))
    return [torch.cat(parts) for parts in out]


def clip_preprocess(x: torch.Tensor, size: int = 224) -> torch.Tensor:
    """Grey ``(B, 1, H, W)`` in [0, 1] → CLIP's input: 3 channels, bilinear resize to ``size`` (no
    centre crop), CLIP's mean/std (the code's preprocessing).

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §1.
    """
    x = F.interpolate(x.expand(-1, 3, -1, -1), size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(CLIP_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def _cached_checkpoint(name: str, tag: str) -> str | None:
    """The local file open_clip would load for ``(name, tag)``, from the Hugging Face cache or
    open_clip's URL cache, without touching the network; ``None`` when it is not there."""
    import open_clip
    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache
        for filename in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(cfg["hf_hub"].rstrip("/"), filename)
            if isinstance(found, str):
                return found
    if cfg.get("url"):
        local = Path.home() / ".cache" / "clip" / Path(cfg["url"]).name
        if local.is_file():
            return str(local)
    return None


def _download_url(name: str, tag: str) -> str:
    """Where open_clip would download ``(name, tag)`` from: the Hugging Face hub when the tag has a
    hub copy, else its URL."""
    import open_clip
    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    if cfg.get("hf_hub"):
        return "https://huggingface.co"
    if cfg.get("url"):
        return cfg["url"]
    raise ValueError(f"open_clip knows no download for CLIP {name} with pretrained={tag!r}")


def load_clip(name: str = "ViT-B-32", pretrained: str | Path | None = "openai", *, allow_random: bool = False,
              download: bool = False, device: str = "cpu"):
    """CLIP through ``open_clip``, frozen, eval mode, fp32. Returns ``(model, tokenizer, is_pretrained)``.

    ``pretrained`` is open_clip's tag (``"openai"``: read from the local Hugging Face / open_clip
    cache; ``download=True`` lets open_clip fetch it, which needs internet once) or a checkpoint
    file. When the weights are not there this raises with instructions, at once and without network
    retries (with ``download=True``: within seconds when the host does not answer), unless ``allow_random=True``:
    then the architecture is built with random weights and
    ``is_pretrained`` is False — every artefact made with it must say "random-init CLIP — not a
    reproduction".

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §1.
    """
    import open_clip
    if name not in open_clip.list_models():
        close = difflib.get_close_matches(name, open_clip.list_models(), 3)
        raise ValueError(f"unknown CLIP model {name!r} (open_clip has no such architecture; close: {', '.join(close) or 'none'})")
    tokenizer = open_clip.get_tokenizer(name)
    source, failed = None, ""
    if pretrained is not None:
        is_file = isinstance(pretrained, Path) or Path(str(pretrained)).suffix in (".pt", ".pth", ".bin", ".safetensors")
        if is_file and not Path(pretrained).is_file():
            # a path that does not exist is a typo, never a reason to fall back to random weights
            raise FileNotFoundError(f"CLIP checkpoint {pretrained} does not exist")
        if is_file:
            source = str(pretrained)
        else:
            source = _cached_checkpoint(name, str(pretrained))
            if source is None and download:
                try:  # probe first: open_clip's hub client retries for about 50 s before failing
                    require_host(_download_url(name, str(pretrained)))
                    source = str(pretrained)
                except ConnectionError as exc:
                    failed = f"download=True failed ({exc}). "
    if source is not None:
        model = open_clip.create_model(name, pretrained=source, device=device)
        is_pretrained = True
    elif allow_random:
        if failed:  # the user asked for the real weights: say why they did not come, do not fall back in silence
            warnings.warn(f"{failed}CLIP {name} is built with random weights, as allow_random=True permits: every result "
                          "made with it is 'random-init CLIP — not a reproduction'", stacklevel=2)
        model = open_clip.create_model(name, pretrained=None, device=device)
        is_pretrained = False
    else:
        raise FileNotFoundError(
            f"{failed}CLIP {name} weights ({pretrained}) are not available locally. On a machine with internet run "
            f"`python -c \"import open_clip; open_clip.create_model('{name}', pretrained='openai')\"` to fill the "
            "cache (≈ 0.34 GB), pass download=True, or pass pretrained=<local checkpoint>. Smoke profiles may pass "
            "allow_random=True, which labels every result 'random-init CLIP — not a reproduction'.")
    model = model.float().eval().requires_grad_(False)
    return model, tokenizer, is_pretrained


@torch.no_grad()
def text_directions(model, tokenizer, device: str = "cpu", texts: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """ΔT_vis = n(t_f − t_vis) and ΔT_ir = n(t_f − t_ir) from ``texts`` (default :data:`TEXTS`), ``(1, D)`` each.

    Derived in ``notebooks/40_ldfusion_clip_space.ipynb`` §2.
    """
    texts = texts or TEXTS
    t = _n(model.encode_text(tokenizer([texts["vis"], texts["ir"], texts["fused"]]).to(device)).float())
    return _n(t[2:3] - t[0:1]), _n(t[2:3] - t[1:2])
