"""Shared fixtures: tiny datasets written to tmp folders in the project's layout."""

import numpy as np
import pytest

from fusionlib import io


def write_split(folder, names, size=(20, 24), modalities=("ir", "vi"), seed=0):
    """Write random images for ``names`` into ``folder/<modality>/``; returns the folder."""
    rng = np.random.default_rng(seed)
    for m in modalities:
        for n in names:
            shape = size if m == "ir" else size + (3,)
            io.write_image(folder / m / n, rng.integers(0, 256, size=shape, dtype=np.uint8))
    return folder


@pytest.fixture
def split(tmp_path):
    return write_split(tmp_path / "toy" / "test", ["a.png", "b.png", "c.png"])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No data root (→ synthetic scenes) and a private cache: training-glue tests touch nothing shared."""
    monkeypatch.setenv("FUSIONLIB_DATA", str(tmp_path / "nodata"))
    monkeypatch.setenv("FUSIONLIB_CACHE", str(tmp_path / "cache"))
    return tmp_path


def reference_code(paper: str):
    """The authors' unmodified code for ``paper`` (:func:`fusionlib.control.reference_root`), a test
    oracle only: a context manager that puts it on ``sys.path`` and removes its modules afterwards
    (:func:`fusionlib.control.authors_code`); skips the test when the folder is absent."""
    from fusionlib.control import authors_code, reference_root
    try:
        root = reference_root(paper)
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return authors_code(root)
