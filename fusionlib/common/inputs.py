"""The input contract every network here shares: non-empty batches of float images in the model's
dtype. A uint8 image or a float64 tensor fails with a message that says how to convert it, instead
of a "bias type" error from deep inside a convolution (issue 12's fault list)."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["check_images"]


def check_images(model: nn.Module, **images: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the model and the argument unless every tensor of ``images`` is a
    non-empty ``(B, C, H, W)`` batch of the model's floating dtype (e.g. float32 in [0, 1]).

    Derived in ``notebooks/00_data_and_conventions.ipynb`` ("Reading the datasets": files become
    float tensors in [0, 1] through :func:`fusionlib.io.to_tensor`).
    """
    name = type(model).__name__
    param = next(model.parameters(), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    for arg, t in images.items():
        if not torch.is_tensor(t) or t.ndim != 4:
            raise ValueError(f"{name} takes {arg} as a (B, C, H, W) tensor, got {getattr(t, 'shape', type(t).__name__)}")
        if t.shape[0] == 0:
            raise ValueError(f"{name} got an empty batch for {arg} {tuple(t.shape)}")
        if t.dtype != dtype:
            how = ("scale it with fusionlib.io.to_tensor (uint8 -> float in [0, 1])" if not t.is_floating_point()
                   else f"cast it with .to({dtype}) or the model with .to({t.dtype})")
            raise ValueError(f"{name} takes {arg} as {dtype} like its weights, got {t.dtype}: {how}")
