"""Pictures of a trained DCMIF (fusionlib.dcmif.figures)."""

import pytest
import torch

from fusionlib.dcmif.figures import atom_mosaic


def test_atom_mosaic_scales_each_atom_to_one_and_leaves_empty_tiles_blank():
    g = torch.Generator().manual_seed(0)
    mosaic = atom_mosaic(torch.randn(10, 3, 3, generator=g))
    assert mosaic.shape == (16, 16) and float(mosaic.nan_to_num(0).abs().max()) == pytest.approx(1.0)
    assert int(mosaic.isnan().sum()) == 16 * 16 - 10 * 9
