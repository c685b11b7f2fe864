"""fusionlib.study.reproduce: tiny notebooks run, get indexed, and a failure leaves the index consistent."""

import json
import os
from pathlib import Path

import nbformat
import pytest

from fusionlib.study import reports, reproduce

PARAMS = 'profile: str = "smoke"  # run profile\ndevice: str = "cpu"  # torch device\nvalue: float = 1.0  # a number to report'
WRITE = """import pandas as pd
from fusionlib.study.reports import Reporter
rep = Reporter("toy", "{stem}", profile, parameters={{"value": value}}, device=device)
rep.table(pd.DataFrame({{"value": [value]}}), "{stem}_table", "new: toy")"""


def make_notebook(folder, stem, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), params,
                nbformat.v4.new_code_cell(body.format(stem=stem))]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{stem}.ipynb")


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    (nbs / "profiles").mkdir(parents=True)
    (nbs / "profiles" / "smoke.yaml").write_text("defaults:\n  device: cpu\nnotebooks:\n  00_ok:\n    value: 2.5\n")
    make_notebook(nbs, "00_ok", WRITE)
    return tmp_path


def test_runs_and_indexes(project, monkeypatch):
    monkeypatch.delenv("FUSIONLIB_REPORTS", raising=False)
    out = reproduce.run("smoke", notebooks_dir=project / "notebooks", reports_dir=project / "reports", progress=False)
    assert [r["notebook"] for r in out] == ["00_ok.ipynb"]
    assert (project / "reports" / "executed" / "smoke" / "00_ok.ipynb").is_file()
    assert (project / "reports" / "smoke" / "toy" / "00_ok_table.csv").read_text() == "value\n2.5000\n"
    rows = reports.read_index(project / "reports")
    assert {r["artefact"] for r in rows} == {"smoke/toy/00_ok_table.csv", "smoke/toy/00_ok_table.md"}
    assert "00_ok.ipynb" in (project / "reports" / "executed" / "smoke" / "runs.csv").read_text()
    assert "FUSIONLIB_REPORTS" not in os.environ  # the run's settings do not leak into the caller


def test_failure_names_notebook_and_cell_and_keeps_index(project, capsys):
    make_notebook(project / "notebooks", "01_bad", 'raise RuntimeError("boom in the middle")')
    make_notebook(project / "notebooks", "02_never", WRITE)
    code = reproduce.main(["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports")])
    err = capsys.readouterr().err
    assert code == 1
    assert "01_bad.ipynb failed in code cell" in err and "RuntimeError: boom in the middle" in err
    rows = reports.read_index(project / "reports")  # parseable, and holds the first notebook's artefacts only
    assert {r["notebook"] for r in rows} == {"00_ok"}
    assert (project / "reports" / "smoke" / "toy" / "00_ok_table.csv").is_file()
    assert not (project / "reports" / "smoke" / "toy" / "02_never_table.csv").exists()
    assert (project / "reports" / "executed" / "smoke" / "01_bad.failed.ipynb").is_file()


def test_only_and_unknown_parameter(project, capsys):
    make_notebook(project / "notebooks", "01_other", WRITE)
    out = reproduce.run("smoke", only="other", notebooks_dir=project / "notebooks",
                        reports_dir=project / "reports", progress=False)
    assert [r["notebook"] for r in out] == ["01_other.ipynb"]
    (project / "notebooks" / "profiles" / "smoke.yaml").write_text("notebooks:\n  00_ok:\n    valeu: 3\n")
    assert reproduce.main(["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports"),
                           "--only", "00_"]) == 2
    assert "['valeu']" in capsys.readouterr().err


def test_missing_profile(project):
    with pytest.raises(FileNotFoundError, match="gpu"):
        reproduce.load_profile("gpu", project / "notebooks")


def test_relative_data_root_reaches_the_kernel(project, monkeypatch):
    """Kernels run in notebooks/; ``FUSIONLIB_DATA=../shared/data make reproduce`` must still mean
    the caller's ../shared/data."""
    (project / "mydata").mkdir()
    make_notebook(project / "notebooks", "01_env", 'import os\nopen("{stem}.txt", "w").write(os.environ["FUSIONLIB_DATA"])')
    monkeypatch.chdir(project)
    monkeypatch.setenv("FUSIONLIB_DATA", "mydata")
    reproduce.run("smoke", only="01_env", notebooks_dir=project / "notebooks", reports_dir=project / "reports", progress=False)
    assert (project / "notebooks" / "01_env.txt").read_text() == str((project / "mydata").resolve())
    assert os.environ["FUSIONLIB_DATA"] == "mydata"


def test_shared_anchors_section(project):
    """Profiles may hold YAML anchors under ``shared`` (merged with ``<<``); other keys are errors."""
    (project / "notebooks" / "profiles" / "smoke.yaml").write_text(
        "defaults:\n  device: cpu\nshared:\n  common: &common\n    value: 4.0\nnotebooks:\n  00_ok:\n    <<: *common\n")
    reproduce.run("smoke", notebooks_dir=project / "notebooks", reports_dir=project / "reports", progress=False)
    assert (project / "reports" / "smoke" / "toy" / "00_ok_table.csv").read_text() == "value\n4.0000\n"
    (project / "notebooks" / "profiles" / "smoke.yaml").write_text("defaults: {}\nextra: {}\n")
    with pytest.raises(ValueError, match="unknown top-level keys"):
        reproduce.run("smoke", notebooks_dir=project / "notebooks", reports_dir=project / "reports", progress=False)


NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAPER_NOTEBOOKS = {"lrcfuse": "1", "dcmif": "2", "iassf": "3", "ldfusion": "4"}


@pytest.mark.parametrize("profile, limit", [("cpu", (30, 30)), ("gpu", (5,))])
def test_profile_budgets_are_declared_and_within_the_machines(profile, limit):
    """cpu: ≤ 30 min main model + ≤ 30 min variants per paper on 2 cores; gpu: ≤ 5 min per paper on one H200."""
    import yaml
    budget = yaml.safe_load((NOTEBOOKS / "profiles" / f"{profile}.yaml").read_text())["budget"]
    assert set(budget) == set(PAPER_NOTEBOOKS), f"{profile}.yaml budgets {sorted(budget)}"
    for paper, (main, variants) in budget.items():
        if len(limit) == 2:
            assert main <= limit[0] and variants <= limit[1], (profile, paper)
        else:
            assert main + variants <= limit[0], (profile, paper)


@pytest.mark.parametrize("profile", ["smoke", "cpu", "gpu", "full"])
def test_every_profile_key_is_a_declared_parameter(profile):
    """The runner refuses a typo at run time; this finds it without running anything."""
    spec = reproduce.load_profile(profile, NOTEBOOKS)
    stems = {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")}
    assert set(spec["notebooks"]) <= stems, f"{profile}: unknown notebooks {set(spec['notebooks']) - stems}"
    for stem in spec["notebooks"]:
        params = reproduce.notebook_parameters(NOTEBOOKS / f"{stem}.ipynb", profile, spec, None)
        assert params["profile"] == profile


def test_profile_errors_are_one_line(project, capsys):
    """A misspelt notebook name in a profile, and a YAML syntax error, stop the run with one line."""
    profiles = project / "notebooks" / "profiles"
    args = ["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports")]
    (profiles / "smoke.yaml").write_text("notebooks:\n  00_okk:\n    value: 1.0\n")
    assert reproduce.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no notebook named 00_okk (did you mean 00_ok?)" in err
    (profiles / "smoke.yaml").write_text("notebooks:\n  00_ok:\n    value: [1.0\n")
    assert reproduce.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "smoke.yaml:4:1: YAML syntax error" in err


def test_a_failure_keeps_the_last_success_and_a_success_clears_the_failure(project):
    """A success removes an earlier .failed.ipynb of that notebook; a failure writes one beside the last
    successful copy and never deletes that copy (a committed cpu copy must survive a typo or a Ctrl-C)."""
    nbs, executed = project / "notebooks", project / "reports" / "executed" / "smoke"
    run = lambda: reproduce.run("smoke", notebooks_dir=nbs, reports_dir=project / "reports", progress=False)  # noqa: E731
    make_notebook(nbs, "00_ok", 'raise RuntimeError("first attempt")')
    with pytest.raises(reproduce.NotebookFailed):
        run()
    assert (executed / "00_ok.failed.ipynb").is_file() and not (executed / "00_ok.ipynb").exists()
    make_notebook(nbs, "00_ok", WRITE)
    run()
    assert (executed / "00_ok.ipynb").is_file() and not (executed / "00_ok.failed.ipynb").exists()
    good = (executed / "00_ok.ipynb").read_text()
    make_notebook(nbs, "00_ok", 'raise RuntimeError("broken again")')
    with pytest.raises(reproduce.NotebookFailed, match="the last successful copy .*00_ok.ipynb is kept"):
        run()
    assert (executed / "00_ok.failed.ipynb").is_file() and (executed / "00_ok.ipynb").read_text() == good


def test_dead_kernel_is_one_line_and_leaves_one_state(project, capsys):
    """Issue 12 item 5: a kernel killed mid-run (what the OOM killer does) leaves the failed copy, no
    ``.running.ipynb``, and one line saying what happened."""
    make_notebook(project / "notebooks", "01_dies", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    executed = project / "reports" / "executed" / "smoke"
    executed.mkdir(parents=True)
    (executed / "01_dies.ipynb").write_text("{}")  # an earlier success: kept
    code = reproduce.main(["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports")])
    err = capsys.readouterr().err
    assert code == 1 and "01_dies.ipynb: the kernel died" in err and "Traceback" not in err
    assert sorted(p.name for p in executed.glob("01_dies*")) == ["01_dies.failed.ipynb", "01_dies.ipynb"]
    assert (executed / "01_dies.ipynb").read_text() == "{}"
    assert not list(executed.glob(".*.running.ipynb"))


def test_ctrl_c_cleans_up(project):
    """Ctrl-C inside a notebook: one line, the partial copy kept as failed, nothing half-written left."""
    import signal
    import subprocess
    import sys
    import time
    make_notebook(project / "notebooks", "01_slow", "import time\ntime.sleep(120)")
    executed = project / "reports" / "executed" / "smoke"
    executed.mkdir(parents=True)
    (executed / "01_slow.ipynb").write_text('{"kept": true}')  # e.g. a committed copy of a long run
    proc = subprocess.Popen([sys.executable, "-m", "fusionlib.study.reproduce", "--only", "01_", "--notebooks",
                             str(project / "notebooks"), "--reports", str(project / "reports")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "TQDM_DISABLE": "1"},
                            # a shell's background job (nohup … &) inherits SIGINT ignored; a terminal's does not
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    running = executed / ".01_slow.running.ipynb"

    def sleeping():  # papermill marks a cell "running" in its output copy when the kernel starts it
        try:
            cells = json.loads(running.read_text())["cells"]  # papermill adds its injected-parameters cell
            slow = next(c for c in cells if "time.sleep(120)" in "".join(c["source"]))
            return slow["metadata"]["papermill"]["status"] == "running"
        except (OSError, ValueError, KeyError, StopIteration):
            return False
    deadline = time.time() + 240  # a loaded machine starts kernels slowly: wait for the cell, not a fixed time
    while not sleeping() and time.time() < deadline:
        time.sleep(0.5)
    assert sleeping(), "the slow cell never started"
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "01_slow.ipynb: interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert sorted(p.name for p in executed.iterdir() if "01_slow" in p.name) == ["01_slow.failed.ipynb", "01_slow.ipynb"]
    assert (executed / "01_slow.ipynb").read_text() == '{"kept": true}'  # Ctrl-C cost nothing


def test_executed_copies_keep_no_images(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
                                           metadata={"image/png": {"width": 400}}),
                    nbformat.v4.new_output("stream", name="stdout", text="a number: 3\n"),
                    nbformat.v4.new_output("display_data", data={reproduce.WIDGET_VIEW: {"model_id": "a", "version_major": 2},
                                                                 "text/plain": " 40%|████      | 2/5"})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"a": {"model_name": "FloatProgressModel"}}}}
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    assert reproduce.strip_images(path, "reports/cpu/") == 1
    assert "widgets" not in nbformat.read(path, as_version=4).metadata  # progress bars' saved state: megabytes, no use offline
    out = nbformat.read(path, as_version=4).cells[0].outputs
    assert "image/png" not in out[0]["data"] and "reports/cpu/<paper>/" in out[0]["data"]["text/plain"]
    assert out[1]["text"] == "a number: 3\n"  # text outputs untouched
    assert out[2]["data"] == {"text/plain": " 40%|████      | 2/5"}  # a progress bar's text, not its widget (a CDN in the book)
    assert reproduce.strip_images(path, "reports/cpu/") == 0


def test_no_committed_executed_copy_shows_a_widget():
    """A widget view in an executed copy makes its book page load require.js and the widget manager from a public CDN."""
    import subprocess
    from fusionlib.paths import project_root
    tracked = subprocess.run(["git", "ls-files", "reports/executed"], cwd=project_root(), capture_output=True, text=True,
                             check=True).stdout.split()
    showing = [p for p in tracked if p.endswith(".ipynb") and reproduce.WIDGET_VIEW in (project_root() / p).read_text()]
    assert not showing, showing


def test_every_profile_file_is_a_runnable_profile():
    """`make reproduce PROFILE=cpu` failed with 'invalid choice' while profiles/cpu.yaml existed."""
    assert set(reproduce.PROFILES) == {p.stem for p in (NOTEBOOKS / "profiles").glob("*.yaml")}


def test_set_overrides_a_parameter_checks_it_first_and_leaves_runs_csv_alone(project, capsys):
    args = ["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports")]
    assert reproduce.main([*args, "--set", "value=7.5"]) == 0
    assert (project / "reports" / "smoke" / "toy" / "00_ok_table.csv").read_text() == "value\n7.5000\n"
    assert not (project / "reports" / "executed" / "smoke" / "runs.csv").exists()  # not the profile's own timing
    assert reproduce.main([*args, "--set", "valu=7"]) == 2
    assert "declares only" in capsys.readouterr().err
    assert reproduce.main([*args, "--set", "value"]) == 2
    assert "--set takes NAME=VALUE" in capsys.readouterr().err


def test_a_duplicate_profile_key_is_an_error_not_a_silent_win(project, capsys):
    (project / "notebooks" / "profiles" / "smoke.yaml").write_text(
        "defaults:\n  device: cpu\nnotebooks:\n  00_ok:\n    value: 2.5\n    value: 9.0\n")
    assert reproduce.main(["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports")]) == 2
    err = capsys.readouterr().err
    assert "smoke.yaml:6:5" in err and "duplicate key 'value'" in err
    assert not (project / "reports" / "smoke").exists()


def test_every_notebooks_parameters_are_checked_before_the_first_runs(project, capsys):
    make_notebook(project / "notebooks", "01_second", WRITE)
    (project / "notebooks" / "profiles" / "smoke.yaml").write_text(
        "defaults:\n  device: cpu\nnotebooks:\n  01_second:\n    valeu: 1.0\n")
    assert reproduce.main(["--notebooks", str(project / "notebooks"), "--reports", str(project / "reports")]) == 2
    assert "01_second.ipynb declares only" in capsys.readouterr().err
    assert not (project / "reports" / "smoke" / "toy" / "00_ok_table.csv").exists()  # 00_ok never ran


def test_dry_run_values_may_only_scale_the_profile_down():
    """A dry run takes the profile's code paths: its values are smaller numbers or subsets, never a
    flag, a name or a mode; every profile's dry_run section obeys."""
    for profile in reproduce.PROFILES:
        reproduce.check_dry_run(reproduce.load_profile(profile, NOTEBOOKS), profile)
    spec = {"notebooks": {"12_x": {"n_images": 0, "crop": 128, "flag": True, "sizes": [256, 256], "sets": ["a", "b"],
                                   "net": "vgg"}}}
    ok = {"n_images": 1, "crop": 64, "sizes": [64, 64], "sets": ["b"]}
    reproduce.check_dry_run({**spec, "dry_run": {"12_x": ok}})
    for bad, why in [({"crop": 256}, "does not scale down"), ({"flag": False}, "does not scale down"),
                     ({"net": "random"}, "does not scale down"), ({"sets": ["c"]}, "does not scale down"),
                     ({"sizes": [64, 512]}, "does not scale down"), ({"n_images": 0.0}, "does not scale down"),
                     ({"epochs": 1}, "which the profile does not set")]:
        with pytest.raises(ValueError, match=why):
            reproduce.check_dry_run({**spec, "dry_run": {"12_x": bad}}, "gpu")


def test_dry_run_writes_into_a_scratch_root_at_the_dry_run_sizes(project, capsys):
    """--dry-run: the profile's values with its dry_run section on top, on the CPU, into a scratch root
    with a private checkpoints folder; the real reports, runs.csv and manifest are not touched."""
    (project / "notebooks" / "profiles" / "gpu.yaml").write_text(
        "defaults:\n  device: cuda\nnotebooks:\n  00_ok:\n    value: 9.0\ndry_run:\n  00_ok:\n    value: 0.5\n")
    make_notebook(project / "notebooks", "01_env", 'import os\nprint("CK", os.environ["FUSIONLIB_CHECKPOINTS"], device)')
    scratch = project / "scratch"
    out = reproduce.run("gpu", notebooks_dir=project / "notebooks", reports_dir=scratch, progress=False, dry_run=True)
    assert [r["notebook"] for r in out] == ["00_ok.ipynb", "01_env.ipynb"]
    assert (scratch / "gpu" / "toy" / "00_ok_table.csv").read_text() == "value\n0.5000\n"
    assert (scratch / "checkpoints" / "MANIFEST.csv").is_file()
    cells = json.loads((scratch / "executed" / "gpu" / "01_env.ipynb").read_text())["cells"]
    printed = ["".join(o["text"]) for c in cells for o in c.get("outputs", []) if "CK" in "".join(o.get("text", ""))]
    assert [p.strip() for p in printed] == [f"CK {scratch / 'checkpoints'} cpu"]
    assert not (project / "reports").exists() and not (scratch / "executed" / "gpu" / "runs.csv").exists()
    (project / "notebooks" / "profiles" / "gpu.yaml").write_text(
        "notebooks:\n  00_ok:\n    value: 9.0\ndry_run:\n  00_ok:\n    value: 10.0\n")
    assert reproduce.main(["--profile", "gpu", "--dry-run", "--notebooks", str(project / "notebooks")]) == 2
    assert "dry_run 00_ok.value = 10.0 does not scale down the profile's 9.0" in capsys.readouterr().err
