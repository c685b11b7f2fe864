"""Where things live: the project root, the data root and the reports root.

- data root: ``$FUSIONLIB_DATA`` if set, else ``<project root>/data``.
- reports root: ``$FUSIONLIB_REPORTS`` if set, else ``<project root>/reports``.
- cache root (generated synthetic datasets): ``$FUSIONLIB_CACHE`` if set, else ``<project root>/.cache``.
- git commit (provenance of artefacts and checkpoints): :func:`git_commit`.
- weights root (pretrained checkpoints the user downloaded): ``$FUSIONLIB_WEIGHTS`` if set, else
  ``<project root>/weights`` (git-ignored).

The project root is the nearest folder, from the working directory upwards, holding this
project's ``pyproject.toml``; notebooks run from ``notebooks/`` therefore find the same folders as
``make`` run from the top. Outside a checkout (an installed package) the working directory is used.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["project_root", "data_root", "reports_root", "cache_root", "weights_root", "weights_file", "git_commit"]


def project_root(start: str | Path | None = None) -> Path:
    """The checkout holding fusionlib's ``pyproject.toml`` (searching upwards), else the cwd."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "fusionlib"' in pyproject.read_text(errors="ignore"):
            return folder
    return here


def _env_or_project(var: str, folder: str) -> Path:
    """``$var`` made absolute (relative paths from the cwd) when set, else ``<project root>/folder``."""
    env = os.environ.get(var)
    return Path(env).expanduser().resolve() if env else project_root() / folder


def data_root() -> Path:
    """``$FUSIONLIB_DATA`` if set (relative paths are taken from the cwd), else ``<project>/data``."""
    return _env_or_project("FUSIONLIB_DATA", "data")


def reports_root() -> Path:
    """``$FUSIONLIB_REPORTS`` if set, else ``<project>/reports``."""
    return _env_or_project("FUSIONLIB_REPORTS", "reports")


def cache_root() -> Path:
    """``$FUSIONLIB_CACHE`` if set, else ``<project>/.cache`` (never the read-only data root)."""
    return _env_or_project("FUSIONLIB_CACHE", ".cache")


def weights_root() -> Path:
    """``$FUSIONLIB_WEIGHTS`` if set, else ``<project>/weights`` (checkpoints are never committed)."""
    return _env_or_project("FUSIONLIB_WEIGHTS", "weights")


def weights_file(path: str | Path | None, default: str | Path, what: str, how: str) -> Path:
    """``path``, else ``<weights root>/default``, checked to exist: a missing file raises one
    ``FileNotFoundError`` that names ``what`` was looked for where and ``how`` to get it (every
    pretrained or released checkpoint the project loads goes through here)."""
    file = Path(path) if path is not None else weights_root() / default
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found at {file}: {how}; put it at {weights_root() / default} "
                                "(FUSIONLIB_WEIGHTS sets the folder) or pass path=...")
    return file


def git_commit(root: Path) -> str:
    """HEAD (+local-changes if fusionlib/ or notebooks/ differ), or ``$FUSIONLIB_COMMIT`` when set
    (for copies of the tree without git history, such as a remote GPU machine)."""
    if os.environ.get("FUSIONLIB_COMMIT"):
        return os.environ["FUSIONLIB_COMMIT"] + " (from $FUSIONLIB_COMMIT)"
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "fusionlib",
                                "notebooks"], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return head + ("+local-changes" if dirty else "")
