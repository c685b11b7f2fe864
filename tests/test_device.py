"""fusionlib.study.device: the one-call GPU run, checked on the CPU: what pack carries and its size limit,
run's priority, budget and failure rules on tiny notebooks, and an archive that unpacks only into the tree."""

import tarfile

import pytest

from fusionlib.study import device
from fusionlib.data import find_pairs
from fusionlib.paths import data_root, weights_root
from tests.test_reproduce import WRITE, make_notebook


def test_the_device_module_imports_light_and_knows_every_paper():
    """On the device it runs before the carried wheels are installed: no kornia, papermill or torch at import."""
    import subprocess
    import sys
    code = ("import sys; import fusionlib.study.device; bad = {'kornia', 'papermill', 'torch', 'open_clip'} & set(sys.modules); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
    from fusionlib.study.registry import papers
    assert device.papers() == {key: door.notebooks for key, door in papers().items()}  # the doors', read from files


def test_pack_carries_the_stated_subset_under_the_limit(tmp_path):
    if not (data_root() / "msrs" / "train").is_dir() or not (weights_root() / "vgg19_normalised").is_dir():
        pytest.skip("needs the sample data and weights (FUSIONLIB_DATA, FUSIONLIB_WEIGHTS = ../shared/...)")
    sizes = device.pack(tmp_path / "pack")
    assert sizes["data"] <= device.PACK_LIMIT_MIB and set(sizes) == {"data", "weights"}
    for split, n in device.PACK_PAIRS.items():
        carried = len(find_pairs(tmp_path / "pack" / "data" / split))
        assert carried == (n or len(find_pairs(data_root() / split))), split
    assert all((tmp_path / "pack" / "weights" / w).is_dir() for w in device.WEIGHTS)
    with pytest.raises(ValueError, match=r"the data subset is .* MiB, over the 1 MiB"):
        device.pack(tmp_path / "small", limit_mib=1)
    assert not (tmp_path / "small").exists() and not (tmp_path / "small.tmp").exists()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with open(wheels / "huge-1.0-py3-none-any.whl", "wb") as f:  # 40 MiB: the tree + data + weights + this > 64 MiB
        f.truncate(40 * 2 ** 20)
    with pytest.raises(ValueError, match=r"exceed the 64 MiB one call carries"):
        device.pack(tmp_path / "big", wheels=wheels)
    assert not (tmp_path / "big.tmp").exists()


@pytest.fixture
def project(tmp_path):
    nbs = tmp_path / "notebooks"
    (nbs / "profiles").mkdir(parents=True)
    (nbs / "profiles" / "gpu.yaml").write_text("budget:\n  first: [1, 0]\n  second: [1, 0]\n  huge: [600, 0]\n"
                                                "defaults:\n  device: cpu\nnotebooks: {}\n")
    for stem in ("10_a", "11_b", "20_c"):
        make_notebook(nbs, stem, WRITE)
    make_notebook(nbs, "21_bad", 'raise RuntimeError("boom")')
    make_notebook(nbs, "22_never", WRITE)
    return tmp_path


def test_run_follows_priority_skips_what_does_not_fit_and_survives_a_failure(project, tmp_path):
    out = tmp_path / "out"
    groups = {"first": ("20_", "21_", "22_"), "second": ("10_", "11_"), "huge": ("10_",)}
    rows = device.run(out, budget_s=300, pack_dir=project / "no-pack", papers=("first", "huge", "second"), groups=groups,
                      notebooks_dir=project / "notebooks", root=project)
    got = [(r["paper"], r["status"]) for r in rows]
    # first: 20_ done, 21_ fails and ends its paper (22_ depends on it); huge: 600 declared minutes do not fit
    assert got == [("first", "done"), ("first", "failed"), ("huge", "skipped"), ("second", "done"), ("second", "done")]
    assert "boom" in rows[1]["note"] and "do not fit" in rows[2]["note"]
    assert (out / "device_summary.csv").read_text().count("\n") == 6
    with tarfile.open(out / device.RESULTS) as tar:
        names = tar.getnames()
    assert "reports/gpu/toy/10_a_table.csv" in names and "reports/executed/gpu/21_bad.failed.ipynb" in names
    assert not any("22_never" in n for n in names)
    back = tmp_path / "back"
    back.mkdir()
    assert "reports/gpu/toy/20_c_table.csv" in device.unpack([out / device.RESULTS], back)
    assert (back / "reports" / "gpu" / "toy" / "20_c_table.csv").read_text() == \
        (project / "reports" / "gpu" / "toy" / "20_c_table.csv").read_text()


def test_unpack_refuses_paths_outside_the_results(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    (tmp_path / "evil.py").write_text("print('x')")
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(tmp_path / "evil.py", arcname="fusionlib/evil.py")
    with pytest.raises(ValueError, match="fusionlib/evil.py is outside reports/gpu"):
        device.unpack([bad], tmp_path / "root")


def _gpu_modes(spec: dict, notebooks) -> dict[str, list[str]]:
    """For each paper notebook the gpu profile sets something for: the keys its dry run executes for, those
    neither scaled down by ``dry_run`` nor equal to the notebook's own default (what nbval runs on the CPU)."""
    import ast

    import papermill
    modes = {}
    for stem, values in spec["notebooks"].items():
        declared = papermill.inspect_notebook(str(notebooks / f"{stem}.ipynb"))
        modes[stem] = [k for k, v in values.items() if k not in spec["dry_run"].get(stem, {})
                       and ast.literal_eval(declared[k]["default"]) != v]
    return modes


@pytest.mark.parametrize("paper", device.papers())
def test_the_gpu_call_dry_runs_on_the_cpu(paper, tmp_path):
    """What `python -m fusionlib.study.device run` does on the GPU, paper by paper, through the same code on
    this CPU at gpu.yaml's dry_run sizes: the archive comes out, and nothing of the tree (reports/gpu,
    the manifest) changes. Executed: each notebook for which the gpu profile sets something that its dry
    run does not scale down and that differs from the notebook's default (a flag, a mode, a list of
    variants). A notebook whose gpu keys are all sizes or defaults runs, dry, the code nbval already runs
    at its default sizes: only its parameters are checked here (`--dry-run` from the command line still
    executes it). A paper with no such notebook executes nothing here and says so."""
    from fusionlib.study import reproduce
    from fusionlib.paths import project_root
    watched = [project_root() / "checkpoints" / "MANIFEST.csv", project_root() / "reports" / "gpu" / "index.csv"]
    before = [p.read_bytes() if p.is_file() else None for p in watched]
    notebooks = project_root() / "notebooks"
    spec = reproduce.load_profile("gpu", notebooks)
    modes = _gpu_modes(spec, notebooks)
    stems = {p: [s for s in spec["notebooks"] if s.startswith(p)] for p in device.papers()[paper]}
    mine = tuple(p for p, found in stems.items() if found and modes[found[0]])
    for p, found in stems.items():
        if found and p not in mine:
            reproduce.notebook_parameters(notebooks / f"{found[0]}.ipynb", "gpu", spec, "cpu", dry_run=True)
    if not mine:
        pytest.skip(f"the gpu profile sets only sizes and defaults for {paper}'s notebooks: nbval runs their code; parameters checked")
    rows = device.run(tmp_path / "out", budget_s=1e6, pack_dir=tmp_path / "no-pack", papers=(paper,), dry_run=True,
                      scratch=tmp_path / "scratch", groups={paper: mine})
    assert [(r["status"], r["note"]) for r in rows] == [("done", "")] * len(mine), rows
    with tarfile.open(tmp_path / "out" / device.RESULTS) as tar:
        names = tar.getnames()
    assert any(n.startswith(f"reports/gpu/{paper}/") for n in names)
    executed = [n.rsplit("/", 1)[1] for n in names if n.startswith("reports/executed/gpu/") and n.endswith(".ipynb")]
    assert sorted(e[:3] for e in executed) == sorted(mine), executed
    assert [p.read_bytes() if p.is_file() else None for p in watched] == before


def test_the_dry_runs_execute_what_the_gpu_profile_changes():
    """The mode rule above on the real profile: a flag or a variant list that differs from the notebook's
    default is executed, a scaled-down size or a default is not."""
    from fusionlib.study import reproduce
    from fusionlib.paths import project_root
    notebooks = project_root() / "notebooks"
    modes = _gpu_modes(reproduce.load_profile("gpu", notebooks), notebooks)
    assert "clip_model" in modes["41_ldfusion_training_and_tables"]  # ViT-B-32, not the default's smaller tower
    assert "ablation_skip" in modes["22_dcmif_vgii_afri_and_tables"]  # every variant, 7×7 included
    assert "allow_random_vgg" in modes["12_lrcfuse_training_and_tables"]  # the real VGG-19, no random init
    assert modes["40_ldfusion_clip_space"] == []  # allow_random_clip: the default
    assert "n_images" not in modes["41_ldfusion_training_and_tables"]  # a size the dry run scales down
