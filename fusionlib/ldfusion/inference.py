"""Running a trained LDFusion: its fuser for the metrics and the benchmark, on Y with the visible chroma put back as the
authors' test script does (:func:`fuser`).
"""

from __future__ import annotations

from fusionlib.common.rgb import fuse_rgb
from fusionlib.ldfusion.model import LDFusion

__all__ = ["fuser"]


def fuser(model: LDFusion, device: str = "cpu"):
    """``(ir (1,1,H,W), vis RGB (1,3,H,W)) -> fused RGB`` with OpenCV's YCrCb (docs/ldfusion.md#colour).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §3.
    """
    return fuse_rgb(model.to(device), "opencv", device)
