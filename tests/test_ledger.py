"""fusionlib.ledger: verdicts computed from synthetic artefacts, the papers' internal checks, the
committed claims table, and the report builder on a tiny reports tree."""

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from fusionlib import ledger as L
from fusionlib.reports import register

PROJECT = Path(__file__).resolve().parents[1]


def claim(check, evidence="toy/table.csv", missing="", testable="yes"):
    return {"id": "T-C1", "paper": "toy", "claim": "a claim", "where": "§1", "kind": "ranking", "testable": testable,
            "evidence": evidence, "check": check, "criterion": "", "missing": missing, "internal": ""}


@pytest.fixture
def tree(tmp_path):
    """A reports root with one indexed cpu artefact and one smoke artefact of the same name."""
    (tmp_path / "cpu" / "toy").mkdir(parents=True)
    (tmp_path / "smoke" / "toy").mkdir(parents=True)
    pd.DataFrame({"row": ["Ours", "Ours", "Base", "Base"], "metric": ["EN", "Nabf", "EN", "Nabf"],
                  "paper": [7.0, 0.1, 6.0, 0.2], "ours": [6.5, 0.05, 6.0, 0.04]}).to_csv(tmp_path / "cpu/toy/table.csv", index=False)
    pd.DataFrame({"row": ["Ours"], "metric": ["EN"], "paper": [7.0], "ours": [1.0]}).to_csv(tmp_path / "smoke/toy/table.csv", index=False)
    pd.DataFrame({"dataset": ["A", "B"], "psnr": [25.0, 15.0], "p": [0.01, 0.01], "gain": [1.0, -1.0]}).to_csv(
        tmp_path / "cpu/toy/values.csv", index=False)
    register([{"artefact": a, "notebook": "nb", "paper": "toy", "item": "x", "profile": a.split("/")[0]}
              for a in ("cpu/toy/table.csv", "smoke/toy/table.csv", "cpu/toy/values.csv")], tmp_path)
    return tmp_path


def test_a_claim_that_holds_uses_the_best_profile(tree):
    out = L.judge_claim(claim("compare psnr >= 10", "toy/values.csv"), tree)
    assert out["verdict"] == "holds" and out["profile"] == "cpu" and out["evidence"] == "cpu/toy/values.csv"
    # the cpu copy wins over smoke: there Ours's EN is 6.5, in smoke 1.0
    assert "6.5" in L.judge_claim(claim("close 10 | row == 'Ours' and metric == 'EN'"), tree)["note"]


def test_a_claim_that_does_not_hold_says_what_we_measured(tree):
    out = L.judge_claim(claim("compare psnr >= 30", "toy/values.csv"), tree)
    assert out["verdict"] == "does not hold"
    assert "psnr = 25" in out["note"] and "psnr = 15" in out["note"]


def test_partly_holds_names_the_part(tree):
    out = L.judge_claim(claim("compare psnr >= 20", "toy/values.csv"), tree)
    assert out["verdict"] == "partly holds"
    assert re.search(r"1 of 2 pass \(A.*fail: B", out["note"])
    assert L.judge_claim(claim("p p sign gain", "toy/values.csv"), tree)["verdict"] == "partly holds"
    assert L.judge_claim(claim("equals dataset = A", "toy/values.csv"), tree)["verdict"] == "partly holds"


def test_missing_evidence_is_not_testable_and_says_how_to_run_it(tree):
    out = L.judge_claim(claim("compare psnr >= 20", "dcmif/absent.csv", missing="needs FLIR"), tree)
    assert out["verdict"] == "not testable here"
    assert "dcmif/absent.csv" in out["note"] and "ONLY=22_" in out["note"] and "needs FLIR" in out["note"]
    # an artefact on disk but in no index is not evidence either
    (tree / "cpu" / "toy" / "stray.csv").write_text("a\n1\n")
    assert L.judge_claim(claim("compare a >= 0", "toy/stray.csv"), tree)["verdict"] == "not testable here"
    none = L.judge_claim(claim("none", "", missing="no CLIP weights", testable="no"), tree)
    assert none == {"verdict": "not testable here", "note": "no CLIP weights", "evidence": "", "profile": ""}


def test_better_and_best_follow_each_metrics_direction(tree):
    # Ours: EN 6.5 > 6.0 (higher is better) and Nabf 0.05 > 0.04 (lower is better): one of two
    out = L.judge_claim(claim("better Ours than Base"), tree)
    assert out["verdict"] == "partly holds" and out["note"].startswith("1 of 2 pass (EN")
    assert L.judge_claim(claim("best Base | metric == 'Nabf'"), tree)["verdict"] == "holds"
    assert L.judge_claim(claim("mean-rank Ours"), tree)["verdict"] in ("holds", "does not hold")


def test_unknown_check_is_an_error(tree):
    with pytest.raises(ValueError, match="unknown check"):
        L.judge_claim(claim("guess psnr"), tree)


def test_internal_checks_are_computed_from_the_paper_values():
    found = L.internal_checks().set_index("id")
    assert list(found.index) == [f"X{i}" for i in range(1, 14)]
    # X2: DCMIF's mAP is 0.948 while its six class APs average 0.957 (paper_values/dcmif.csv, Table 2)
    assert "Ours mAP 0.948 vs mean AP 0.957" in found.at["X2", "finding"] and not found.at["X2", "consistent"]
    assert "10 of 10 baselines" in found.at["X5", "finding"]
    assert found.at["X7", "consistent"]  # IASSF's rank statements hold in its own tables
    assert found.at["X12", "finding"].startswith("7 ")


def test_the_committed_claims_cover_the_spec_and_every_testable_one_is_judged_or_explained():
    claims = L.load_claims(PROJECT / "reports" / "claims" / "claims.csv")
    assert len(claims) == 81 and claims["paper"].value_counts().to_dict() == {"dcmif": 25, "lrcfuse": 20, "iassf": 18, "ldfusion": 18}
    checks = {c.split()[0] for c in claims["check"]}
    assert checks <= {"none", "verdicts", "text", "compare", "equal", "equals", "close", "better", "best", "mean-rank",
                      "decreases", "p", "internal", "code"}
    testable = claims[claims["testable"].str.match(r"^(yes|partly)")]
    no_evidence = testable[testable["check"] == "none"]
    assert (no_evidence["missing"].str.len() > 20).all(), no_evidence["id"].tolist()
    assert all(name in L.CODE_CHECKS for name in claims.loc[claims["check"].str.startswith("code"), "check"].str.split().str[1])


def test_report_builder_on_a_tiny_index(tree):
    shutil.copytree(PROJECT / "reports" / "paper_values", tree / "paper_values")
    (tree / "claims").mkdir()
    claims = pd.DataFrame([claim("compare psnr >= 20", "toy/values.csv") | {"id": "DCMIF-C6", "paper": "dcmif"},
                           claim("none", "", missing="needs FLIR") | {"id": "DCMIF-C1", "paper": "dcmif"}])[L.CLAIM_COLUMNS]
    claims.to_csv(tree / "claims" / "claims.csv", index=False)
    (tree / "cpu" / "benchmark").mkdir()
    pd.DataFrame({"set": ["MSRS"] * 2, "scoring": ["vifb"] * 2, "method": ["a", "b"], "metric": ["EN", "EN"], "n": [10, 10],
                  "mean": [6.0, 5.0], "std": [1.0, 1.0], "ci_low": [5.5, 4.5], "ci_high": [6.5, 5.5]}).to_csv(
        tree / "cpu" / "benchmark" / "summary.csv", index=False)
    register([{"artefact": "cpu/benchmark/summary.csv", "notebook": "91_benchmark", "paper": "benchmark", "item": "x",
               "profile": "cpu"}], tree)
    text = L.reproduction_report("cpu", tree, base="", manifest_rows=[])
    assert "| dcmif | 2 | 0 | 1 | 0 | 1 |" in text  # one partly holds, one not testable
    assert "**partly holds**" in text and "needs FLIR" in text and "6.000 [5.500, 6.500]" in text
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert (tree / target).is_file(), f"the report links {target}, which does not exist"
