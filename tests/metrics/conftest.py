"""Shared by the metric tests: float64 planes of arrays, and the MSRS pair the reference values were computed on."""

import cv2
import numpy as np
import pytest
import torch

from fusionlib.paths import data_root


def planes(*arrays):
    return [torch.as_tensor(np.asarray(a, dtype=np.float64))[None] for a in arrays]


@pytest.fixture
def msrs_pair():
    folder = data_root() / "msrs" / "test"
    if not (folder / "vi" / "00055D.png").is_file():
        pytest.skip(f"needs the sample data (FUSIONLIB_DATA=../shared/data); not found in {data_root()}")
    ir = cv2.imread(str(folder / "ir" / "00055D.png"), cv2.IMREAD_GRAYSCALE)
    vis = cv2.imread(str(folder / "vi" / "00055D.png"), cv2.IMREAD_GRAYSCALE)
    fused = ((vis.astype(float) + ir.astype(float)) / 2).round().astype(np.uint8)
    return ir, vis, fused
