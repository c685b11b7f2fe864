"""fusionlib.metrics.dataset: per-image table and summary, folder vs fuser, process pool, errors."""

import numpy as np
import pytest
import torch

from fusionlib import io
from fusionlib.data import find_pairs
from fusionlib.io import read_image, to_tensor
from fusionlib.metrics.dataset import evaluate_dataset, score
from fusionlib.common.baselines import average
from fusionlib.common.rgb import fuse_rgb
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
    assert list(summary.index) == NAMES and list(summary.columns) == ["mean", "std", "n"] and (summary["n"] == 3).all()
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


def test_hazy_sets_feed_the_hazy_image_and_score_against_the_clear_one(tmp_path):
    split = write_split(tmp_path / "hz" / "test", ["a.png", "b.png"], modalities=("ir", "vi_hazy", "vi_clear"))
    seen = []

    def fuser(ir, vis):
        seen.append(vis.clone())
        return vis
    table, _ = evaluate_dataset(split, fuser, ["EN", "PSNR"], "canonical", reference="vi_clear", fuser_input="vi_hazy",
                                progress=False)
    hazy = to_tensor(read_image(split / "vi_hazy" / "a.png", "RGB"))
    assert torch.equal(seen[0], hazy)                       # the fuser saw the hazy image …
    clear_scored, _ = evaluate_dataset(split, lambda i, v: v, ["PSNR"], "canonical", reference="vi_clear", progress=False)
    assert table["PSNR"].iloc[0] != clear_scored["PSNR"].iloc[0]  # … and was scored against the clear one
    with pytest.raises(ValueError, match="fuser_input"):
        evaluate_dataset(split, fuser, ["EN"], reference="vi_clear", fuser_input="vi", progress=False)
    rows = score({"id": fuser}, [("hz", split)], 0, ["EN"], "canonical", reference="vi_clear", fuser_input="vi_hazy",
                 per_image=True)
    assert list(rows["image"]) == ["a.png", "b.png"] and set(rows["method"]) == {"id"}


def test_cropped_centre_crops_every_modality(tmp_path, monkeypatch):
    from fusionlib.metrics.dataset import cropped
    monkeypatch.setenv("FUSIONLIB_CACHE", str(tmp_path / "cache"))
    split = write_split(tmp_path / "toy" / "test", ["a.png"], size=(20, 30))
    out = cropped(find_pairs(split), 10, "toy")
    ir = io.read_image(split / "ir" / "a.png")
    assert np.array_equal(io.read_image(out[0].paths["ir"]), ir[5:15, 10:20])
    assert io.read_image(out[0].paths["vi"]).shape == (10, 10, 3) and cropped(out, 0, "toy") == out


def test_score_takes_prepared_samples(split):
    samples = find_pairs(split)[:2]
    table = score({"avg": fuse_rgb(average)}, [("toy", samples), ("missing", split.parent / "nope")], 5, ["EN", "SD"])
    assert list(table["dataset"]) == ["toy"] and int(table["images"].iloc[0]) == 2
    by_folder = score({"avg": fuse_rgb(average)}, [("toy", split)], 2, ["EN", "SD"])
    assert float(by_folder["EN"].iloc[0]) == pytest.approx(float(table["EN"].iloc[0]))


def test_fuser_out_of_range_and_errors_name_the_image(split):
    """Issue 12 item 3: a 0-255 fuser was clamped and scored silently; errors did not say which image."""
    def times_255(ir, vis):
        return vis * 255
    with pytest.raises(ValueError, match=r"evaluating a.png: fuser times_255 returned values in \[.*\] for a.png; fusers return \[0, 1\]"):
        evaluate_dataset(split, times_255, ["EN"], progress=False)

    def broken(ir, vis):
        raise RuntimeError("out of memory")
    with pytest.raises(RuntimeError, match="evaluating a.png: out of memory"):
        evaluate_dataset(split, broken, ["EN"], progress=False)


def test_summary_counts_images_per_metric_and_warns(split):
    import pandas as pd
    from fusionlib.metrics.dataset import summarise
    per_image = pd.DataFrame({"image": ["a", "b", "c"], "CC": [0.5, float("nan"), 0.7], "EN": [6.0, 7.0, 8.0]})
    with pytest.warns(UserWarning, match=r"CC is undefined \(NaN\) on 1 of 3 images: b; its mean uses the other 2"):
        summary = summarise(per_image)
    assert summary.loc["CC", "n"] == 2 and summary.loc["EN", "n"] == 3
    assert summary.loc["CC", "mean"] == pytest.approx(0.6)


def test_crop_cache_follows_the_content(tmp_path, monkeypatch):
    """Issue 12 item 3: the crop cache was keyed by file name and served stale crops after the source changed."""
    from fusionlib.metrics.dataset import cropped
    monkeypatch.setenv("FUSIONLIB_CACHE", str(tmp_path / "cache"))
    split = write_split(tmp_path / "toy" / "test", ["a.png"], size=(20, 24), seed=1)
    first = io.read_image(cropped(find_pairs(split), 8, "toy")[0].paths["ir"])
    write_split(tmp_path / "toy" / "test", ["a.png"], size=(20, 24), seed=2)  # same name, new content
    second = cropped(find_pairs(split), 8, "toy")[0]
    assert second.name == "a.png" and not np.array_equal(io.read_image(second.paths["ir"]), first)
