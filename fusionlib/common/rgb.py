"""The one RGB-by-Y wrapper: fuse the infrared image with the **Y** of a colour visible image, then
put the visible chroma back (the colour policy of every paper here; docs/dcmif.md#afri,
docs/ldfusion.md#colour, docs/lrcfuse.md#training).

Derived in ``notebooks/00_data_and_conventions.ipynb`` ("Why fusion runs on Y"); every table's
fusers go through :func:`fuse_rgb` (classical baselines, LRRNet/LRCFuse via
:func:`fusionlib.common.lrrnet.rgb_fuser`, DCMIF, LDFusion).
"""

from __future__ import annotations

from typing import Callable

import torch

from fusionlib.io import YCbCrConvention, merge_luma, split_luma

__all__ = ["fuse_rgb", "RGBFuser"]

YFuser = Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]


class RGBFuser:
    """What :func:`fuse_rgb` returns: ``(ir, vis RGB) -> fused RGB``. A class rather than a closure, so that it
    pickles and :func:`fusionlib.metrics.dataset.evaluate_dataset` can hand it to worker processes (when
    ``fuse_y`` pickles too: a module-level function such as a classical baseline)."""

    def __init__(self, fuse_y: YFuser, convention: YCbCrConvention, device: str | torch.device | None):
        self.fuse_y, self.convention, self.device = fuse_y, convention, device
        self.__name__ = f"{getattr(fuse_y, '__name__', 'fuser')}_rgb"

    def __call__(self, ir: torch.Tensor | None, vis: torch.Tensor) -> torch.Tensor:
        y, chroma = split_luma(vis, self.convention)
        to = (lambda t: t) if self.device is None else (lambda t: t.to(self.device))
        with torch.no_grad():
            fused = self.fuse_y(None if ir is None else to(ir), to(y.clamp(0, 1)))
        return merge_luma(fused.to(vis.device), chroma, self.convention)


def fuse_rgb(fuse_y: YFuser, convention: YCbCrConvention = "jpeg", device: str | torch.device | None = None,
             ) -> RGBFuser:
    """``fuse_y(ir (B, 1, H, W), y (B, 1, H, W)) -> fused Y (B, 1, H, W)`` in [0, 1], as
    ``(ir, vis RGB (B, 3, H, W)) -> fused RGB (B, 3, H, W)`` in [0, 1] on the visible image's device.

    The visible Y is taken with ``convention`` (``"jpeg"``: PIL/JFIF YCbCr, DCMIF, LRRNet;
    ``"opencv"``: OpenCV YCrCb, LDFusion; see :func:`fusionlib.io.split_luma`) and clamped to [0, 1];
    ``fuse_y`` runs without gradients on ``device`` (default: where the inputs are). ``ir`` may be
    ``None`` for methods that see only the visible image (DCMIF).
    """
    return RGBFuser(fuse_y, convention, device)
