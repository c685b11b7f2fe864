"""fusionlib.metrics.dataset: per-image table and summary, folder vs fuser, process pool, errors."""

import numpy as np
import pytest

from fusionlib import io
from fusionlib.data import find_pairs
from fusionlib.metrics.dataset import evaluate_dataset
from fusionlib.models.baselines import average, fuse_rgb
from tests.conftest import write_split

NAMES = ["EN", "SSIM", "Qabf"]


@pytest.fixture
def split_and_fused(tmp_path):
    split = write_split(tmp_path / "toy" / "test", ["a.png", "b.png", "c.png"], size=(24, 32))
    fused_dir = tmp_path / "fused"
    fuser = fuse_rgb(average)
    for s in find_pairs(split):
        ir, vis = io.read_pair(s.paths["ir"], s.paths["vi"], as_tensor=True)
        io.write_image(fused_dir / s.name, fuser(ir, vis))
    return split, fused_dir, fuser


def test_folder_and_fuser_agree(split_and_fused):
    split, fused_dir, fuser = split_and_fused
    per_dir, summary = evaluate_dataset(split, fused_dir, NAMES, progress=False)
    per_fn, _ = evaluate_dataset(split, fuser, NAMES, progress=False)
    assert list(per_dir["image"]) == ["a.png", "b.png", "c.png"]
    np.testing.assert_allclose(per_dir[NAMES].to_numpy(), per_fn[NAMES].to_numpy(), rtol=1e-12)
    assert list(summary.index) == NAMES and list(summary.columns) == ["mean", "std"]
    assert summary.loc["EN", "mean"] == pytest.approx(per_dir["EN"].mean())
    assert summary.loc["EN", "std"] == pytest.approx(per_dir["EN"].std(ddof=0))


def test_process_pool_gives_the_same_numbers(split_and_fused):
    split, fused_dir, _ = split_and_fused
    serial, _ = evaluate_dataset(split, fused_dir, NAMES, progress=False)
    pooled, _ = evaluate_dataset(split, fused_dir, NAMES, workers=2, progress=False)
    np.testing.assert_array_equal(serial[NAMES].to_numpy(), pooled[NAMES].to_numpy())


def test_fused_found_by_stem(split_and_fused, tmp_path):
    split, fused_dir, _ = split_and_fused
    jpg_dir = tmp_path / "as_bmp"
    for p in fused_dir.iterdir():
        io.write_image(jpg_dir / (p.stem + ".bmp"), io.read_image(p))
    per, _ = evaluate_dataset(split, jpg_dir, ["EN"], progress=False)
    assert len(per) == 3


def test_errors(split_and_fused, tmp_path):
    split, fused_dir, _ = split_and_fused
    (fused_dir / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match="no fused image for b.png"):
        evaluate_dataset(split, fused_dir, ["EN"], progress=False)
    with pytest.raises(FileNotFoundError, match="fused-image folder not found"):
        evaluate_dataset(split, tmp_path / "nowhere", ["EN"], progress=False)
    with pytest.raises(ValueError, match="vi_clear"):
        evaluate_dataset(split, fused_dir, ["EN"], reference="vi_clear", progress=False)
    with pytest.raises(ValueError, match=r"\(1, C, H, W\)"):
        evaluate_dataset(split, lambda ir, vis: vis[0], ["EN"], progress=False)
