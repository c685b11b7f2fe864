"""Smooth random fields (fusionlib.data.fields): scaled to [−1, 1], seeded, smoother with a wider filter."""

import numpy as np

from fusionlib.data.fields import smooth_field


def test_smooth_fields_are_seeded_scaled_and_smooth():
    a = smooth_field(np.random.default_rng(0), 32, 48, 4.0)
    assert a.shape == (32, 48) and a.dtype == np.float64 and np.isclose(np.abs(a).max(), 1.0)
    assert np.array_equal(a, smooth_field(np.random.default_rng(0), 32, 48, 4.0))
    rough = smooth_field(np.random.default_rng(0), 32, 48, 0.5)
    assert np.abs(np.diff(a, axis=1)).mean() < np.abs(np.diff(rough, axis=1)).mean() / 3
