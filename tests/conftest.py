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
    """The authors' unmodified model code for ``paper`` (``$FUSIONLIB_REFERENCE_CODE`` or
    ``../shared/reference_code/<paper>``), a test oracle only: a context manager that puts it on
    ``sys.path`` and removes its modules afterwards (their package names, e.g. ``models``, are
    generic); skips the test when the folder is absent."""
    import contextlib
    import importlib.util
    import os
    import sys
    from pathlib import Path

    from fusionlib.paths import project_root

    root = Path(os.environ.get("FUSIONLIB_REFERENCE_CODE", project_root().parent / "shared" / "reference_code")) / paper
    if not root.is_dir():
        pytest.skip(f"the authors' {paper} code is not at {root} (set FUSIONLIB_REFERENCE_CODE=../shared/reference_code)")

    @contextlib.contextmanager
    def on_path():
        # their README's stubs: `_stubs` always (imported, never used), `_stubs_<package>` only where
        # the real package is not installed
        stubs = [p for p in sorted(root.glob("_stubs*")) if p.name == "_stubs"
                 or importlib.util.find_spec(p.name.removeprefix("_stubs_")) is None]
        paths = [str(root)] + [str(p) for p in stubs]
        before = set(sys.modules)
        sys.path[:0] = paths
        try:
            yield root
        finally:
            def theirs(module):  # namespace packages (no __init__.py) have no __file__, only a path
                where = getattr(module, "__file__", None) or getattr(getattr(module, "__spec__", None), "origin", None)
                paths = getattr(getattr(module, "__spec__", None), "submodule_search_locations", None) or []
                return any(str(root) in str(p) for p in [where or "", *list(paths)])
            doomed = [name for name in set(sys.modules) - before if theirs(sys.modules[name])]
            del sys.path[:len(paths)]
            for name in doomed:
                del sys.modules[name]
    return on_path()
