"""fusionlib.study.health: each check on a live and a dead model's outputs, loss shares, the per-checkpoint
verdict, and the committed cpu health table (which checkpoints are alive, and why not)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionlib.study import health as H
from fusionlib.data.synthetic import make_scene

PROJECT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pair():
    """A synthetic IR/VIS pair in [0, 1] and a live fusion of it (their maximum)."""
    s = make_scene(3, (96, 128))
    ir, vis = s.ir.astype(np.float64), s.vis.mean(axis=2).astype(np.float64)
    return ir, vis, np.maximum(ir, vis)


def test_a_live_fusion_passes_every_output_check(pair):
    ir, vis, fused = pair
    m = H.output_measures(fused, ir, vis)
    assert m["lit_ratio"] >= H.THRESHOLDS["H1"] and m["contrast_ratio"] >= H.THRESHOLDS["H2"]
    assert max(m["r_vis"], m["r_ir"]) < H.THRESHOLDS["H3"]
    verdict = H.assess("toy", pd.DataFrame([m]))
    assert verdict["alive"] == "yes" and verdict["why"] == "all checks pass"


@pytest.mark.parametrize("dead, code", [("black", "H1"), ("flat", "H2"), ("copy", "H3")])
def test_a_dead_output_fails_its_check_by_number(pair, dead, code):
    ir, vis, _ = pair
    fused = {"black": np.zeros_like(vis), "flat": np.full_like(vis, 0.4), "copy": vis * 0.9 + 0.05}[dead]
    verdict = H.assess("toy", pd.DataFrame([H.output_measures(fused, ir, vis)]))
    assert verdict["alive"] == "no"
    assert verdict["why"].startswith(code), verdict["why"]


def test_uint8_and_float_inputs_measure_the_same(pair):
    ir, vis, fused = pair
    as_u8 = [np.round(x * 255).astype(np.uint8) for x in (fused, ir, vis)]
    a, b = H.output_measures(fused, ir, vis), H.output_measures(*as_u8)
    assert all(abs(a[k] - b[k]) < 0.02 for k in a)
    with pytest.raises(ValueError, match="one shape"):
        H.output_measures(fused[:10], ir, vis)


def test_a_constant_pseudo_ir_fails_h4_and_h5_a_real_one_passes(pair):
    ir, vis, fused = pair
    out = H.output_measures(fused, ir, vis)
    constant = {**out, **H.pseudo_ir_measures(np.full_like(ir, ir.mean()), ir)}
    assert constant["hot_r"] == 0.0  # an empty hot-spot map: what a constant mean-IR predictor gets
    dead = H.assess("dcmif", pd.DataFrame([constant]))
    assert dead["alive"] == "no" and "H4" in dead["why"] and "H5" in dead["why"]
    live = H.assess("dcmif", pd.DataFrame([{**out, **H.pseudo_ir_measures(ir * 0.8 + 0.1, ir)}]))
    assert live["alive"] == "yes", live["why"]
    # DCMIF without any pseudo-IR evidence is not taken on trust
    unknown = H.assess("dcmif", pd.DataFrame([out]))
    assert unknown["alive"] == "no" and "H4 not measured" in unknown["why"]


def test_loss_shares_flag_a_claimed_term_below_one_percent():
    log = pd.DataFrame({"step": range(8), "pixel": [3.0] * 8, "deep": [1e-5] * 8, "sobel": [7.0] * 8})
    log["loss"] = log[["pixel", "deep", "sobel"]].sum(axis=1)
    shares = H.loss_shares(log, ["pixel", "deep", "sobel"])
    assert shares["pixel"] == pytest.approx(0.3, rel=1e-4) and shares["deep"] < 1e-5
    verdict = H.assess("toy", pd.DataFrame([{"contrast_ratio": 1.0}]), shares, claimed_terms=("deep",))
    assert verdict["alive"] == "yes" and verdict["inactive_terms"] == "deep" and "H6 deep" in verdict["why"]
    # unweighted logs need their weights, and wrong ones are an error that names the gap
    log2 = pd.DataFrame({"loss": [10.0, 10.0], "l_v": [1.0, 1.0]})
    assert H.loss_shares(log2, ["l_v"], weights={"l_v": 10.0}) == {"l_v": 1.0}
    with pytest.raises(ValueError, match="pass the loss weights"):
        H.loss_shares(log2, ["l_v"])


def test_parse_models():
    assert H.parse_models("lrcfuse:main terms shallow, deep; iassf:main") == [("lrcfuse:main", ("shallow", "deep")),
                                                                              ("iassf:main", ())]
    assert H.parse_models("") == []


def test_the_evaluated_checkpoint_is_the_one_the_tables_provenance_names(tmp_path):
    """A paper notebook that evaluated a later manifest row (LDFusion's cpu main model comes from notebook
    42's checkpoint) owns that row's evidence, not the first row of its (paper, variant)."""
    import json
    from types import SimpleNamespace
    rows = [SimpleNamespace(name=n, paper="ldfusion", variant="wo_ldl", profile="cpu") for n in ("old", "twin")]
    assert H._evaluated(rows, "cpu", tmp_path) == {"old"}  # no provenance: the first row
    table = tmp_path / "cpu" / H.evidence()[("ldfusion", "wo_ldl")].sd_tables[0][0]
    table.parent.mkdir(parents=True)
    table.with_suffix(".provenance.json").write_text(json.dumps({"parameters": {"checkpoint": "twin"}}))
    assert H._evaluated(rows, "cpu", tmp_path) == {"twin"}
    table.with_suffix(".provenance.json").write_text(json.dumps({"parameters": {"checkpoint": "gone"}}))
    assert H._evaluated(rows, "cpu", tmp_path) == {"old"}  # a name the manifest lacks is not trusted


def test_a_checkpoint_trained_by_another_notebook_is_judged_on_that_notebooks_table(tmp_path):
    """Notebook 42 trains and scores its own checkpoint (twin_run_per_image.csv, arm = ours): that table
    speaks for it, not for a -regen copy made later, and not for the authors' arm beside it."""
    import json
    from types import SimpleNamespace
    table = tmp_path / "cpu" / H.notebook_evidence()["42_"].measures[0]
    table.parent.mkdir(parents=True)
    pd.DataFrame([{"image": "a.png", "arm": "ours", "lit_ratio": 1.0, "contrast_ratio": 1.3, "r_vis": 0.6, "r_ir": 0.1},
                  {"image": "a.png", "arm": "authors", "lit_ratio": 0.0, "contrast_ratio": 0.0, "r_vis": 0.0, "r_ir": 0.0}]
                 ).to_csv(table, index=False)
    twin, regen = (SimpleNamespace(name=n, paper="ldfusion", variant="wo_ldl", profile="cpu", notebook="42_")  # checkpoints.Entry.notebook
                   for n in ("twin", "twin-regen"))
    images, _, used = H.checkpoint_evidence(twin, "cpu", tmp_path, paper_owned=False)
    assert images["contrast_ratio"].tolist() == [1.3] and used == [f"cpu/{H.notebook_evidence()['42_'].measures[0]}"]
    assert H.assess("ldfusion", images)["alive"] == "yes"
    assert H.checkpoint_evidence(regen, "cpu", tmp_path, paper_owned=False)[0].empty  # made after the table
    table.with_suffix(".provenance.json").write_text(json.dumps({"parameters": {"checkpoint": "twin-regen"}}))
    assert H.checkpoint_evidence(twin, "cpu", tmp_path, paper_owned=False)[0].empty  # the table names another one
    assert len(H.checkpoint_evidence(regen, "cpu", tmp_path, paper_owned=False)[0]) == 1


@pytest.fixture(scope="module")
def cpu_health():
    from fusionlib.paths import data_root
    if not (data_root() / "msrs" / "test" / "ir").is_dir():
        pytest.skip(f"the sample data is not at {data_root()} (FUSIONLIB_DATA): the cpu sources cannot be read")
    from fusionlib.study.ledger import load_claims
    return H.health_table(load_claims(), "cpu").set_index("checkpoint")


def test_the_cpu_health_table_finds_todays_dead_models(cpu_health):
    from fusionlib import checkpoints
    cpu = {e.name for e in checkpoints.manifest().values() if e.profile == "cpu"}
    assert set(cpu_health.index) == cpu
    dcmif = cpu_health.loc["dcmif-cpu-64px"]  # centred codes (2026-12-07): a live pseudo-IR, but the fused image copies VIS
    assert dcmif["alive"] == "no" and "H3" in dcmif["why"] and dcmif["closest_source"] == "VIS"
    assert dcmif["pir_contrast"] >= H.THRESHOLDS["H4"] and dcmif["hot_r"] >= H.THRESHOLDS["H5"]
    for first in ("ldfusion-wo-ldl-cpu-128px", "ldfusion-wo-ldl-cpu-128px-regen"):  # the first recipe's black models: no table shows them now
        assert cpu_health.loc[first, "alive"] == "no" and "H2 not measured" in cpu_health.loc[first, "why"], first
    for twin in ("ldfusion-wo-ldl-cpu-twin-192px", "ldfusion-wo-ldl-cpu-twin-192px-regen"):  # the authors' settings (notebook 42)
        assert cpu_health.loc[twin, "alive"] == "yes" and cpu_health.loc[twin, "evaluated_by"] == "paper notebook", twin
    assert "table1_per_image" in cpu_health.loc["ldfusion-wo-ldl-cpu-twin-192px-regen", "evidence"]  # notebook 41's main model
    assert cpu_health.loc["iassf-cpu-128px", "alive"] == "yes"
    lrc = cpu_health.loc["lrcfuse-cpu-64px"]  # 2026-12-08: the authors' feeding, sources stretched; every term acts
    assert lrc["alive"] == "yes" and lrc["inactive_terms"] == ""


def test_the_committed_health_table_matches_a_recomputation(cpu_health):
    committed = pd.read_csv(PROJECT / "reports" / "cpu" / "claims" / "health.csv", keep_default_na=False).set_index("checkpoint")
    for name, row in cpu_health.iterrows():
        assert committed.at[name, "alive"] == row["alive"], name
        for col in ("contrast_ratio", "pir_contrast"):
            if not math.isnan(row[col]):
                assert float(committed.at[name, col]) == pytest.approx(row[col], abs=1e-3), (name, col)
