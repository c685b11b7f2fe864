"""Hazy triplets from clear pairs (fusionlib.iassf.hazy): what is written, and that a re-run rewrites nothing."""

import csv

import numpy as np

from fusionlib import io
from fusionlib.iassf.hazy import hazify
from tests.conftest import write_split


def test_hazify_writes_triplets_once_per_source_and_seed(tmp_path):
    split = write_split(tmp_path / "toy" / "test", ["a.png", "b.png"], size=(24, 32))
    dest = hazify(split, tmp_path / "hazy", seed=3)
    for name in ("a.png", "b.png"):
        clear, hazy = io.read_image(dest / "vi_clear" / name, "RGB"), io.read_image(dest / "vi_hazy" / name, "RGB")
        assert np.array_equal(clear, io.read_image(split / "vi" / name, "RGB")) and not np.array_equal(hazy, clear)
        assert np.array_equal(io.read_image(dest / "ir" / name, "L"), io.read_image(split / "ir" / name, "L"))
        assert hazy.astype(float).std() < clear.astype(float).std()  # haze lowers contrast
    rows = list(csv.DictReader(open(dest / "haze.csv")))
    assert [r["image"] for r in rows] == ["a.png", "b.png"] and all(0 < float(r["t_mean"]) < 1 for r in rows)
    stamp = (dest / "vi_hazy" / "a.png").stat().st_mtime_ns
    assert hazify(split, tmp_path / "hazy", seed=3) == dest and (dest / "vi_hazy" / "a.png").stat().st_mtime_ns == stamp
