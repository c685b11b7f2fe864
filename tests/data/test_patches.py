"""The patch grid and the patch dataset (fusionlib.data.patches)."""

import pytest
import torch

from fusionlib.data.patches import PatchDataset, patch_grid
from tests.conftest import write_split


def test_patch_grid():
    assert patch_grid(480, 640, 128, 96, edge_inclusive=False) == [(y, x) for y in (0, 96, 192, 288) for x in (0, 96, 192, 288, 384, 480)]
    grid = patch_grid(480, 640, 128, 96)
    assert len(grid) == 5 * 7 and (352, 512) in grid          # flush with the bottom-right corner
    assert patch_grid(100, 100, 128, 96) == []


def test_patch_dataset(tmp_path):
    split = write_split(tmp_path / "toy" / "train", ["a.png", "b.png"], size=(40, 50))
    ds = PatchDataset(split, size=16, stride=16)
    assert len(ds) == 2 * len(patch_grid(40, 50, 16, 16))
    item = ds[0]
    assert item["ir"].shape == (1, 16, 16) and item["vis"].dtype == torch.float32 and item["ir"].max() <= 255
    sub = PatchDataset(split, size=16, stride=16, count=5, seed=1)
    assert len(sub) == 5 and sub.index == PatchDataset(split, size=16, stride=16, count=5, seed=1).index
    with pytest.raises(ValueError, match="only"):
        PatchDataset(split, size=16, stride=16, count=10_000)
