"""fusionlib.data.synthetic: deterministic scenes with the promised physics."""

import numpy as np

from fusionlib import data
from fusionlib.data import synthetic


def test_same_seed_same_scene():
    a, b = synthetic.make_scene(7, (48, 64)), synthetic.make_scene(7, (48, 64))
    np.testing.assert_array_equal(a.ir, b.ir)
    np.testing.assert_array_equal(a.vis, b.vis)
    assert not np.array_equal(a.vis, synthetic.make_scene(8, (48, 64)).vis)


def test_shapes_and_ranges():
    s = synthetic.make_scene(0, (50, 70))
    assert s.ir.shape == (50, 70) and s.vis.shape == (50, 70, 3)
    assert s.ir.dtype == np.float32 and 0 <= s.ir.min() and s.vis.max() <= 1


def test_targets_are_warm_in_ir_and_hard_to_see_in_vis():
    for seed in range(5):
        s = synthetic.make_scene(seed, noise=False)
        assert s.targets.any()
        ir_contrast = s.ir[s.targets].mean() - s.ir[~s.targets].mean()
        vis_grey = s.vis.mean(axis=2)
        vis_contrast = abs(vis_grey[s.targets].mean() - vis_grey[~s.targets].mean())
        assert ir_contrast > 0.2 and ir_contrast > 2 * vis_contrast


def test_night_darkens_vis_only():
    day = synthetic.make_scene(3, noise=False)
    night = synthetic.make_scene(3, night=True, noise=False)
    assert night.vis.mean() < 0.5 * day.vis.mean()
    np.testing.assert_array_equal(night.ir, day.ir)


def test_misregistration_off_by_default_and_shifts_ir():
    aligned = synthetic.make_scene(2, noise=False)
    assert aligned.shift == (0.0, 0.0)
    moved = synthetic.make_scene(2, noise=False, misregistration=3.0)
    assert abs(np.hypot(*moved.shift) - 3.0) < 1e-9
    assert np.abs(moved.ir - aligned.ir).mean() > 1e-3
    np.testing.assert_array_equal(moved.vis, aligned.vis)


def test_materialize_layout_and_reuse(tmp_path):
    folder = synthetic.materialize(tmp_path / "syn", n=4, size=(32, 40))
    samples = data.find_pairs(folder)
    assert [s.name for s in samples] == ["0000N.png", "0001N.png", "0002D.png", "0003D.png"]
    mtime = (folder / "ir" / "0000N.png").stat().st_mtime_ns
    assert synthetic.materialize(tmp_path / "syn", n=4, size=(32, 40)) == folder
    assert (folder / "ir" / "0000N.png").stat().st_mtime_ns == mtime  # not rewritten


def test_materialize_hazy(tmp_path):
    folder = synthetic.materialize(tmp_path / "hz", n=2, size=(32, 40), hazy=True)
    item = data.PairedDataset(folder)[1]
    assert set(item) == {"name", "ir", "vis_hazy", "vis_clear"}
    assert item["vis_hazy"].std() < item["vis_clear"].std()
