"""`make test` runs on two pytest-xdist workers (``--dist loadgroup``). The notebooks (nbval) form one
group, so one worker runs them in name order: notebooks 90-92 read what the paper notebooks wrote,
and notebooks 21 and 22 share a training run. Everything else is spread over both workers."""

import pytest


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group("notebooks"))
