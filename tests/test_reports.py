"""fusionlib.study.reports: atomic files, index upserts, paper/ours/delta tables, provenance."""

import json

import matplotlib
import pandas as pd
import pytest
import torch

from fusionlib.study import registry, reports
from fusionlib.study.registry import Paper

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PAPER_CSV = """table,row,metric,value,source
Table 3,Ours,EN,7.1234,papers/x.txt l.10
Table 3,Ours,SD,40.5,papers/x.txt l.10
Table 3,DenseFuse,EN,6.8,papers/x.txt l.11
Table 4,Ours,EN,1.0,papers/x.txt l.20
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "toy_values.csv").write_text(PAPER_CSV)  # a toy paper's hand-written values, registered with it
    registry.register(Paper(key="toy", title="a toy", chapter="Toy", notebooks=("99_",), values=tmp_path / "toy_values.csv"))
    yield tmp_path
    registry.unregister("toy")


def test_table_files_sidecar_and_index(root):
    rep = reports.Reporter("toy", "99_toy", "smoke", parameters={"n": 2}, seed=5, root=root)
    rep.set_data_checksum("abc")
    rep.table(pd.DataFrame({"x": [1.0, 2.0 / 3.0], "name": ["a", "b"]}), "tab1", "new: test table", decimals=3)
    csv_text = (root / "smoke" / "toy" / "tab1.csv").read_text()
    assert csv_text == "x,name\n1.000,a\n0.667,b\n"
    assert "| 0.667 | b |" in (root / "smoke" / "toy" / "tab1.md").read_text()
    side = json.loads((root / "smoke" / "toy" / "tab1.provenance.json").read_text())
    assert side["parameters"] == {"n": 2} and side["seed"] == 5 and side["data_checksum"] == "abc"
    assert side["profile"] == "smoke" and "torch" in side["packages"] and side["commit"]
    rep.table(pd.DataFrame({"x": [1.0]}, index=["Qabf"]), "tab2", "new: labelled rows", decimals=1)
    assert (root / "smoke" / "toy" / "tab2.csv").read_text() == "row,x\nQabf,1.0\n"  # an unnamed label is kept
    rows = reports.read_index(root)[:2]
    assert [r["artefact"] for r in rows] == ["smoke/toy/tab1.csv", "smoke/toy/tab1.md"]
    assert rows[0] == {"artefact": "smoke/toy/tab1.csv", "notebook": "99_toy", "paper": "toy",
                       "item": "new: test table", "profile": "smoke"}


def test_table_without_markdown_drops_an_earlier_copy(root):
    rep = reports.Reporter("toy", "99_toy", "smoke", root=root)
    rep.table(pd.DataFrame({"v": [1.0]}), "big", "new: big")
    assert "smoke/toy/big.md" in {r["artefact"] for r in reports.read_index(root)}
    rep.table(pd.DataFrame({"v": [2.0]}), "big", "new: big", markdown=False)
    listed = {r["artefact"] for r in reports.read_index(root)}
    assert "smoke/toy/big.csv" in listed and "smoke/toy/big.md" not in listed
    assert not (root / "smoke" / "toy" / "big.md").exists()  # it would contradict the new CSV
    side = json.loads((root / "smoke" / "toy" / "big.provenance.json").read_text())
    assert side["artefacts"] == ["big.csv"]


def test_withdraw_removes_only_this_notebooks_artefacts_of_a_skipped_section(root):
    rep = reports.Reporter("toy", "99_toy", "cpu", root=root)
    rep.table(pd.DataFrame({"v": [1.0]}), "table_vii", "Table VII")
    fig, ax = plt.subplots()
    rep.figure(fig, "fig10", "Fig. 10")
    plt.close(fig)
    other = reports.Reporter("toy", "98_other", "cpu", root=root)
    other.table(pd.DataFrame({"v": [2.0]}), "shared_name", "new: another notebook's")
    gone = rep.withdraw("table_vii", "fig10", "shared_name", "never_written")
    assert sorted(gone) == ["cpu/toy/fig10.png", "cpu/toy/fig10.provenance.json", "cpu/toy/table_vii.csv",
                            "cpu/toy/table_vii.md", "cpu/toy/table_vii.provenance.json"]
    assert sorted(p.name for p in (root / "cpu" / "toy").iterdir()) == [
        "shared_name.csv", "shared_name.md", "shared_name.provenance.json"]  # the other notebook's file stays
    assert {r["artefact"] for r in reports.read_index(root, "cpu")} == {"cpu/toy/shared_name.csv", "cpu/toy/shared_name.md"}
    assert rep.withdraw("table_vii") == []  # twice: nothing left to do


def test_image_keeps_exact_pixels_with_provenance_and_an_index_row(root):
    import numpy as np
    from fusionlib import io as fio
    rep = reports.Reporter("toy", "99_toy", "cpu", parameters={"n": 1}, root=root)
    pixels = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    path = rep.image(pixels, "fused/a", "new: fused outputs")
    assert path == root / "cpu" / "toy" / "fused" / "a.png"
    np.testing.assert_array_equal(fio.read_image(path, "RGB"), pixels)
    assert json.loads((root / "cpu" / "toy" / "fused" / "a.provenance.json").read_text())["artefacts"] == ["a.png"]
    assert {r["artefact"] for r in reports.read_index(root, "cpu")} == {"cpu/toy/fused/a.png"}
    assert not list((root / "cpu" / "toy" / "fused").glob(".*.tmp"))  # written atomically


def test_markdown_escapes_pipes_and_nan():
    md = reports.to_markdown(pd.DataFrame({"max |x|": [float("nan")], "name": ["a|b"]}), 2)
    assert md.splitlines()[0] == "| max \\|x\\| | name |"
    assert md.splitlines()[2] == "| — | a\\|b |"


def test_rerun_is_identical(root):
    def once():
        rep = reports.Reporter("toy", "99_toy", "smoke", root=root)
        rep.table(pd.DataFrame({"v": [0.1234567]}), "t", "new: t")
        return (root / "smoke" / "toy" / "t.csv").read_bytes(), (root / "smoke" / "index.csv").read_bytes()
    assert once() == once()


def test_index_upsert_keeps_other_rows(root):
    reports.register([{"artefact": "gpu/p/a.csv", "notebook": "n", "paper": "p", "item": "Table 1", "profile": "gpu"}], root)
    reports.register([{"artefact": "smoke/p/a.csv", "notebook": "n", "paper": "p", "item": "Table 1", "profile": "smoke"}], root)
    reports.register([{"artefact": "gpu/p/a.csv", "notebook": "n", "paper": "p", "item": "Table 2", "profile": "gpu"}], root)
    rows = reports.read_index(root)
    assert [(r["artefact"], r["item"]) for r in rows] == [("gpu/p/a.csv", "Table 2"), ("smoke/p/a.csv", "Table 1")]
    assert [r["artefact"] for r in reports.read_index(root, "gpu")] == ["gpu/p/a.csv"]  # one index per profile
    assert (root / "smoke" / "index.csv").read_text().count("\n") == 2


def test_compare_with_paper(root):
    ours = pd.DataFrame({"EN": [7.0, 6.9], "SD": [41.0, 39.0]}, index=["Ours", "Extra"])
    rep = reports.Reporter("toy", "99_toy", "smoke", root=root)
    out = rep.compare(ours, "Table 3", "table3")
    assert list(out.columns) == ["row", "metric", "paper", "ours", "delta"]
    got = {(r.row, r.metric): r for r in out.itertuples()}
    assert got[("Ours", "EN")].delta == pytest.approx(7.0 - 7.1234)
    assert got[("Ours", "SD")].delta == pytest.approx(0.5)
    assert pd.isna(got[("DenseFuse", "EN")].ours)           # paper row we did not run
    assert pd.isna(got[("Extra", "EN")].paper)              # our row the paper lacks
    assert list(out["row"])[:3] == ["Ours", "Ours", "DenseFuse"]  # paper order first
    assert "| Ours | EN | 7.1234 | 7.0000 | -0.1234 |" in (root / "smoke" / "toy" / "table3.md").read_text()


def test_compare_flags_an_implausible_value_where_it_appears(root):
    paper = pd.DataFrame({"table": "Table 7", "row": ["Ours", "Ours"], "metric": ["NIQE", "SF"], "value": [4.1, 11.0],
                          "source": "x"})
    out = reports.compare_with_paper(pd.DataFrame({"NIQE": [60.05], "SF": [3.26]}, index=["Ours"]), paper, "Table 7")
    flags = dict(zip(out["metric"], out["flag"]))
    assert flags["NIQE"].startswith("NIQE = 60.05 is outside its plausible range [0, 30]") and flags["SF"] == ""
    plain = reports.compare_with_paper(pd.DataFrame({"NIQE": [4.0], "SF": [3.26]}, index=["Ours"]), paper, "Table 7")
    assert "flag" not in plain.columns  # tables without such a value keep their five columns


def test_compare_labels_a_stand_in_dataset_as_what_it_is():
    paper = pd.DataFrame({"table": "Table 1", "row": ["Ours/FLIR", "Other/FLIR", "Ours/MSRS"], "metric": "EN",
                          "value": [7.0, 6.0, 5.0], "source": "x"})
    ours = pd.DataFrame({"EN": [6.5, 4.0]}, index=["Ours/RoadScene", "Ours/MSRS"])
    out = reports.compare_with_paper(ours, paper, "Table 1", stand_ins={"RoadScene": "FLIR"}).set_index("row")
    assert out.loc["Ours/RoadScene (paper: FLIR)", "delta"] == pytest.approx(-0.5)  # compared with FLIR …
    assert "Ours/FLIR" not in out.index  # … never labelled as FLIR
    assert pd.isna(out.loc["Other/FLIR", "ours"]) and out.loc["Ours/MSRS", "delta"] == pytest.approx(-1.0)


def test_paper_values_errors(root):
    with pytest.raises(KeyError, match="unknown paper 'nope'"):
        reports.load_paper_values("nope")
    registry.register(Paper(key="gone", title="", chapter="", notebooks=("98_",), values=root / "gone.csv"))
    try:
        with pytest.raises(FileNotFoundError, match="gone.csv"):
            reports.load_paper_values("gone")
    finally:
        registry.unregister("gone")
    with pytest.raises(ValueError, match="Table 9"):
        reports.compare_with_paper(pd.DataFrame({"EN": [1.0]}, index=["Ours"]),
                                   reports.load_paper_values("toy"), "Table 9")
    (root / "toy_values.csv").write_text(PAPER_CSV + "Table 3,Ours,EN,7.0,again\n")
    with pytest.raises(ValueError, match="twice"):
        reports.load_paper_values("toy")


def test_figure(root):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    rep = reports.Reporter("toy", "99_toy", "gpu", device="cpu", root=root)
    first = rep.figure(fig, "fig6", "Fig. 6").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n"
    assert rep.figure(fig, "fig6", "Fig. 6").read_bytes() == first
    plt.close(fig)
    assert reports.read_index(root)[0]["artefact"] == "gpu/toy/fig6.png"


def test_image_grid_lays_out_rows_and_checks_them():
    grey, rgb = torch.rand(1, 1, 8, 10), torch.rand(1, 3, 8, 10)
    fig = reports.image_grid([("a", [grey, rgb]), ("b", [rgb, grey])], ["IR", "fused"], title="t")
    axes = fig.get_axes()
    assert len(axes) == 4 and axes[0].get_title() == "IR" and axes[2].get_ylabel() == "b"
    plt.close(fig)
    with pytest.raises(ValueError, match="row 'a' has 1 images for 2 columns"):
        reports.image_grid([("a", [grey])], ["IR", "fused"])


def test_committed_indexes_list_committed_artefacts():
    """Issue 12 item 5: a fresh clone's indexes name only files the clone has (smoke's index is ignored)."""
    import subprocess
    from fusionlib.paths import project_root
    tracked = set(subprocess.run(["git", "ls-files", "reports"], cwd=project_root(), capture_output=True, text=True,
                                 check=True).stdout.splitlines())
    indexes = sorted(p for p in tracked if p.endswith("/index.csv"))
    assert "reports/smoke/index.csv" not in indexes and indexes
    for index in indexes:
        profile = index.split("/")[1]
        rows = reports.read_index(project_root() / "reports", profile)
        assert rows and all(r["profile"] == profile for r in rows)
        missing = [r["artefact"] for r in rows if f"reports/{r['artefact']}" not in tracked]
        assert not missing, f"{index} lists {len(missing)} uncommitted artefacts, e.g. {missing[:3]}"
        # and the other way round: every tracked file of the profile is an indexed artefact with its sidecar
        listed = {f"reports/{r['artefact']}" for r in rows}
        files = [p for p in tracked if p.startswith(f"reports/{profile}/") and p != index]
        unlisted = [p for p in files if p not in listed and not p.endswith(".provenance.json")]
        assert not unlisted, f"{len(unlisted)} tracked files under reports/{profile}/ are in no index (write them through Reporter), e.g. {unlisted[:3]}"
        no_sidecar = [p for p in listed if p.count("/") > 2  # reports/<profile>/REPORT.md is the report itself
                      and p.rsplit(".", 1)[0] + ".provenance.json" not in tracked]
        assert not no_sidecar, f"{len(no_sidecar)} indexed artefacts have no provenance sidecar, e.g. {no_sidecar[:3]}"
