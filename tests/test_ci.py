"""The CI entry point itself: a syntax error there fails CI in one second, before any test runs.

Issue 18's edit once pasted a block into the middle of ``.ci/run``'s first comment and left an
unmatched backquote; ``bash -n`` would have caught it here.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci" / "run"


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_ci_entry_point_parses():
    done = subprocess.run(["bash", "-n", str(CI)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_ci_entry_point_is_executable_and_runs_make_test():
    assert os.access(CI, os.X_OK), ".ci/run must be executable (git update-index --chmod=+x)"
    commands = [line.strip() for line in CI.read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "make test", "CI must end by running the README's `make test`"
    assert "set -euo pipefail" in commands, "a failing step must fail CI"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_target_exists():
    done = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
