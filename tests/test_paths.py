"""fusionlib.paths: project root discovery and the environment overrides."""

from fusionlib import paths


def test_project_root_found_from_a_subfolder(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "fusionlib"\n')
    (tmp_path / "notebooks").mkdir()
    assert paths.project_root(tmp_path / "notebooks") == tmp_path.resolve()


def test_other_projects_are_not_ours(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    (tmp_path / "sub").mkdir()
    assert paths.project_root(tmp_path / "sub") == (tmp_path / "sub").resolve()


def test_environment_overrides(tmp_path, monkeypatch):
    for var, fn in [("FUSIONLIB_DATA", paths.data_root), ("FUSIONLIB_REPORTS", paths.reports_root),
                    ("FUSIONLIB_CACHE", paths.cache_root)]:
        monkeypatch.setenv(var, str(tmp_path / var))
        assert fn() == (tmp_path / var).resolve()


def test_defaults_live_in_the_checkout(monkeypatch):
    for var in ("FUSIONLIB_DATA", "FUSIONLIB_REPORTS", "FUSIONLIB_CACHE"):
        monkeypatch.delenv(var, raising=False)
    root = paths.project_root()
    assert (root / "fusionlib").is_dir()  # tests run inside the checkout
    assert paths.data_root() == root / "data" and paths.reports_root() == root / "reports"
