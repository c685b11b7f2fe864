"""fusionlib.study.ledger: verdicts computed from synthetic artefacts, the papers' internal checks, the
committed claims table, and the report builder on a tiny reports tree."""

import re
from pathlib import Path

import pandas as pd
import pytest

from fusionlib.study import ledger as L
from fusionlib.study.reports import register

PROJECT = Path(__file__).resolve().parents[1]


def claim(check, evidence="toy/table.csv", missing="", testable="yes", model="", noise=""):
    return {"id": "T-C1", "paper": "toy", "claim": "a claim", "where": "§1", "kind": "ranking", "testable": testable,
            "evidence": evidence, "check": check, "criterion": "", "missing": missing, "internal": "",
            "model": model, "noise": noise}


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
    pd.DataFrame({"metric": ["EN", "Nabf"], "std": [0.2, 0.001]}).to_csv(tmp_path / "cpu/toy/floor.csv", index=False)
    pd.DataFrame({"against": ["a", "b", "c"], "pairs": [6, 5, 6], "p": [0.5, 0.0625, 0.01], "gain": [1.0, 2.0, -1.0]}).to_csv(
        tmp_path / "cpu/toy/tests.csv", index=False)
    register([{"artefact": a, "notebook": "nb", "paper": "toy", "item": "x", "profile": a.split("/")[0]}
              for a in ("cpu/toy/table.csv", "smoke/toy/table.csv", "cpu/toy/values.csv", "cpu/toy/floor.csv",
                        "cpu/toy/tests.csv")], tmp_path)
    return tmp_path


def test_a_claim_that_holds_uses_the_best_profile(tree):
    out = L.judge_claim(claim("compare psnr >= 10", "toy/values.csv"), tree)
    assert out["verdict"] == "holds" and out["profile"] == "cpu" and out["evidence"] == "cpu/toy/values.csv"
    # the cpu copy wins over smoke: there Ours's EN is 6.5, in smoke 1.0
    assert "6.5" in L.judge_claim(claim("close 10 | row == 'Ours' and metric == 'EN'"), tree)["note"]


def test_a_committed_profile_never_judges_from_smokes_local_artefacts(tree):
    (tree / "smoke/toy/only_smoke.csv").write_text("psnr\n30\n")
    register([{"artefact": "smoke/toy/only_smoke.csv", "notebook": "nb", "paper": "toy", "item": "x", "profile": "smoke"}], tree)
    assert L.evidence_profiles("cpu") == ("full", "gpu", "cpu") and L.evidence_profiles("smoke") == L.PROFILE_ORDER
    assert L.judge_claim(claim("compare psnr >= 10", "toy/only_smoke.csv"), tree, L.evidence_profiles("smoke"))["verdict"] == "holds"
    out = L.judge_claim(claim("compare psnr >= 10", "toy/only_smoke.csv"), tree, L.evidence_profiles("cpu"))
    assert out["verdict"] == "not testable here" and out["evidence"] == ""


def test_a_claim_that_does_not_hold_says_what_we_measured(tree):
    out = L.judge_claim(claim("compare psnr >= 30", "toy/values.csv"), tree)
    assert out["verdict"] == "does not hold"
    assert "psnr = 25" in out["note"] and "psnr = 15" in out["note"]


def test_partly_holds_names_the_part(tree):
    out = L.judge_claim(claim("compare psnr >= 20", "toy/values.csv"), tree)
    assert out["verdict"] == "partly holds"
    assert re.search(r"1 of 2 resolved pass \(A.*fail: B", out["note"])
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
    assert out["verdict"] == "partly holds" and out["note"].startswith("1 of 2 resolved pass (EN")
    assert L.judge_claim(claim("best Base | metric == 'Nabf'"), tree)["verdict"] == "holds"
    assert L.judge_claim(claim("mean-rank Ours"), tree)["verdict"] in ("holds", "does not hold")


def test_a_difference_inside_the_noise_floor_is_unresolved_not_failed(tree):
    # EN: Ours 6.5 vs Base 6.0, |Δ| 0.5 > 0.2: resolved (Ours better); Nabf: 0.05 vs 0.04, |Δ| 0.01 > 0.001: resolved (worse)
    out = L.judge_claim(claim("better Ours than Base", noise="toy/floor.csv std"), tree)
    assert out["verdict"] == "partly holds"
    wide = L.judge_claim(claim("better Ours than Base | metric == 'EN'", noise="toy/floor.csv std"), tree)
    assert wide["verdict"] == "holds"
    (tree / "cpu/toy/floor.csv").write_text("metric,std\nEN,0.8\nNabf,0.05\n")  # both differences now inside it
    out = L.judge_claim(claim("better Ours than Base", noise="toy/floor.csv std"), tree)
    assert out["verdict"] == "unresolved" and "inside the seed noise floor 0.8" in out["note"]
    best = L.judge_claim(claim("best Ours | metric == 'EN'", noise="toy/floor.csv std"), tree)
    assert best["verdict"] == "unresolved"
    assert L.noise_floor("toy/floor.csv std", tree) == {"EN": 0.8, "Nabf": 0.05}
    with pytest.raises(ValueError, match="bad noise spec"):
        L.noise_floor("toy/floor.csv median", tree)
    # a twin run's floor: one column, repeated on every arm's rows (the first row of a metric counts)
    pd.DataFrame({"arm": ["ours", "ours", "authors"], "metric": ["EN", "Nabf", "EN"],
                  "noise floor (ours vs ours resampled)": [0.7, None, 0.7]}).to_csv(tree / "cpu/toy/twin.csv", index=False)
    register([{"artefact": "cpu/toy/twin.csv", "notebook": "nb", "paper": "toy", "item": "x", "profile": "cpu"}], tree)
    spec = "toy/twin.csv column noise floor (ours vs ours resampled)"
    assert L.noise_floor(spec, tree) == {"EN": 0.7}
    assert L.judge_claim(claim("better Ours than Base | metric == 'EN'", noise=spec), tree)["verdict"] == "unresolved"
    with pytest.raises(ValueError, match="has no 'metric' and 'floor' columns"):
        L.noise_floor("toy/twin.csv column floor", tree)


def test_paired_tests_without_power_or_significance_are_unresolved(tree):
    out = L.judge_claim(claim("p p sign gain", "toy/tests.csv"), tree)
    # a: n = 6, p = 0.5 (could have been significant, was not); b: n = 5, the smallest p is 0.0625; c: significant, worse
    assert out["verdict"] == "does not hold" and "unresolved (2 of 3)" in out["note"]
    assert "no test over 5 pairs can reach p < 0.05" in out["note"] and "neither shown nor refuted" in out["note"]
    only_open = L.judge_claim(claim("p p sign gain | against != 'c'", "toy/tests.csv"), tree)
    assert only_open["verdict"] == "unresolved"


def test_implausible_values_carry_no_verdict(tree):
    pd.DataFrame({"row": ["Ours", "Base"] * 2, "metric": ["NIQE", "NIQE", "SF", "SF"], "paper": [4.0, 5.0, 11.0, 12.0],
                  "ours": [60.0, 80.0, 63.9, 7.6]}).to_csv(tree / "cpu/toy/table.csv", index=False)
    out = L.judge_claim(claim("better Ours than Base"), tree)
    assert out["verdict"] == "unresolved" and "NIQE = 60 is outside its plausible range" in out["note"]
    assert L.judge_claim(claim("close 10 | metric == 'SF'"), tree)["verdict"] == "does not hold"  # 7.6 is plausible
    assert "SF = 63.9" in L.judge_claim(claim("close 10 | metric == 'SF' and row == 'Ours'"), tree)["note"]


def test_a_claim_on_a_dead_model_or_a_weightless_term_is_unresolved(tree):
    health = pd.DataFrame([{"profile": "cpu", "checkpoint": "toy-1", "paper": "toy", "variant": "main", "alive": "no",
                            "why": "H2 contrast 0.000", "inactive_terms": "", "loss_shares": "", "evaluated_by": "paper notebook"},
                           {"profile": "cpu", "checkpoint": "toy-2", "paper": "toy", "variant": "aux", "alive": "yes",
                            "why": "all checks pass", "inactive_terms": "deep", "loss_shares": "pixel 1; deep 1e-07",
                            "evaluated_by": "paper notebook"},
                           {"profile": "cpu", "checkpoint": "toy-2-regen", "paper": "toy", "variant": "aux", "alive": "no",
                            "why": "H2 contrast 0.010", "inactive_terms": "", "loss_shares": "", "evaluated_by": "benchmark"}])
    dead = L.judge_claim(claim("compare psnr >= 10", "toy/values.csv", model="toy:main"), tree, health=health)
    assert dead["verdict"] == "unresolved" and "toy-1, which is not alive (H2 contrast 0.000)" in dead["note"]
    assert "psnr = 25" in dead["note"]  # what was measured is still said
    term = L.judge_claim(claim("compare psnr >= 10", "toy/values.csv", model="toy:aux terms deep"), tree, health=health)
    assert term["verdict"] == "unresolved" and "carry no weight" in term["note"]
    alive = L.judge_claim(claim("compare psnr >= 10", "toy/values.csv", model="toy:aux terms pixel"), tree, health=health)
    assert alive["verdict"] == "holds"
    # a benchmark-only checkpoint does not speak for a paper table, nor another profile's for cpu evidence
    other = health.assign(profile="gpu")
    assert L.judge_claim(claim("compare psnr >= 10", "toy/values.csv", model="toy:main"), tree, health=other)["verdict"] == "holds"
    # benchmark evidence rests on the checkpoints the benchmark scored (its methods name them), whoever else evaluated them
    (tree / "cpu/benchmark").mkdir()
    pd.DataFrame({"dataset": ["A"], "psnr": [25.0]}).to_csv(tree / "cpu/benchmark/values.csv", index=False)
    register([{"artefact": "cpu/benchmark/values.csv", "notebook": "nb", "paper": "benchmark", "item": "x", "profile": "cpu"}], tree)
    bench = claim("compare psnr >= 10", "benchmark/values.csv", model="toy:aux")
    assert "toy-2-regen, which is not alive" in L.judge_claim(bench, tree, health=health)["note"]  # no methods.csv: evaluated_by
    pd.DataFrame({"method": ["average", "Toy [toy-2]"]}).to_csv(tree / "cpu/benchmark/methods.csv", index=False)
    assert L.judge_claim(bench, tree, health=health)["verdict"] == "holds"  # it scored toy-2, which is alive


def test_a_gain_over_a_denominator_near_zero_is_not_a_percentage(tree):
    pd.DataFrame({"table": ["Table 6"] * 2, "claim": ["X: gain over the second best (%)"] * 2, "metric": ["Nabf", "EN"],
                  "paper": [-22.49, 1.1], "ours": [2118403.1, -5.0], "verdict": ["does not hold"] * 2,
                  "note": ["against average"] * 2}).to_csv(tree / "cpu/toy/table.csv", index=False)
    out = L.judge_claim(claim("verdicts"), tree)
    assert out["verdict"] == "does not hold" and "denominator near 0" in out["note"] and "unresolved (1 of 2)" in out["note"]


def test_unknown_check_is_an_error(tree):
    with pytest.raises(ValueError, match="unknown check"):
        L.judge_claim(claim("guess psnr"), tree)


def test_internal_checks_are_computed_from_the_paper_values():
    found = L.internal_checks().set_index("id")
    assert list(found.index) == [f"X{i}" for i in range(1, 14)]
    # X2: DCMIF's mAP is 0.948 while its six class APs average 0.957 (fusionlib/dcmif/paper_values.csv, Table 2)
    assert "Ours mAP 0.948 vs mean AP 0.957" in found.at["X2", "finding"] and not found.at["X2", "consistent"]
    assert "10 of 10 baselines" in found.at["X5", "finding"]
    assert found.at["X7", "consistent"]  # IASSF's rank statements hold in its own tables
    assert found.at["X12", "finding"].startswith("7 ")


def test_the_committed_claims_cover_the_spec_and_every_testable_one_is_judged_or_explained():
    claims = L.load_claims()
    assert len(claims) == 81 and claims["paper"].value_counts().to_dict() == {"dcmif": 25, "lrcfuse": 20, "iassf": 18, "ldfusion": 18}
    checks = {c.split()[0] for c in claims["check"]}
    assert checks <= {"none", "verdicts", "text", "compare", "equal", "equals", "close", "near", "better", "best", "mean-rank",
                      "decreases", "p", "internal", "code"}
    testable = claims[claims["testable"].str.match(r"^(yes|partly)")]
    no_evidence = testable[testable["check"] == "none"]
    assert (no_evidence["missing"].str.len() > 20).all(), no_evidence["id"].tolist()
    assert all(name in L.code_checks() for name in claims.loc[claims["check"].str.startswith("code"), "check"].str.split().str[1])


def test_report_builder_on_a_tiny_index(tree):
    claims = pd.DataFrame([claim("compare psnr >= 20", "toy/values.csv") | {"id": "DCMIF-C6", "paper": "dcmif"},
                           claim("none", "", missing="needs FLIR") | {"id": "DCMIF-C1", "paper": "dcmif"},
                           claim("close 10", "toy/table.csv") | {"id": "DCMIF-C2", "paper": "dcmif"}])[L.CLAIM_COLUMNS]
    (tree / "cpu" / "toy" / "table.csv").unlink()  # DCMIF-C2's evidence now exists in smoke only: a cpu report may not use it
    (tree / "cpu" / "benchmark").mkdir()
    pd.DataFrame({"set": ["MSRS"] * 2, "scoring": ["vifb"] * 2, "method": ["a", "b"], "metric": ["EN", "EN"], "n": [10, 10],
                  "mean": [6.0, 5.0], "std": [1.0, 1.0], "ci_low": [5.5, 4.5], "ci_high": [6.5, 5.5]}).to_csv(
        tree / "cpu" / "benchmark" / "summary.csv", index=False)
    register([{"artefact": "cpu/benchmark/summary.csv", "notebook": "91_benchmark", "paper": "benchmark", "item": "x",
               "profile": "cpu"}], tree)
    text = L.reproduction_report("cpu", tree, base="", claims=claims, manifest_rows=[])
    assert "| dcmif | 3 | 0 | 1 | 0 | 0 | 2 |" in text  # one partly holds, two not testable (one only in smoke)
    assert "smoke/toy" not in text
    assert "**partly holds**" in text and "needs FLIR" in text and "6.000 [5.500, 6.500]" in text
    for target in re.findall(r"\]\(([^)]+)\)", text):  # "../" leaves reports/ for the package (a paper's values, claims)
        path = PROJECT / "reports" / target if target.startswith("../") else tree / target
        assert path.is_file(), f"the report links {target}, which does not exist"


def test_every_link_of_the_committed_reports_resolves_to_a_tracked_file():
    """REPORT.md (both copies) and the per-paper ledgers link only files a clone has: none missing, none git-ignored."""
    import subprocess
    tracked = set(subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout.split("\n"))
    pages = [PROJECT / "reports" / "REPORT.md", *sorted((PROJECT / "reports").glob("*/REPORT.md")),
             *sorted((PROJECT / "reports").glob("*/claims/ledger_*.md"))]
    pages = [p for p in pages if p.relative_to(PROJECT).as_posix() in tracked]
    assert pages
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            rel = (page.parent / target).resolve().relative_to(PROJECT).as_posix()
            assert rel in tracked, f"{page.relative_to(PROJECT)} links {target}, which is {'missing' if not (PROJECT / rel).exists() else 'not tracked'}"


def test_the_committed_ledger_has_no_failure_inside_the_noise_floor():
    """Recomputed from the artefacts, independently of the ledger's rules: every 'does not hold' verdict
    whose claim names a noise floor must have a failing row or metric outside it, and none rests on a
    row its notebook flagged 'not resolved' or on a model that is not alive."""
    led = pd.read_csv(PROJECT / "reports" / "cpu" / "claims" / "ledger.csv", keep_default_na=False).set_index("id")
    claims = L.load_claims().set_index("id")
    health = pd.read_csv(PROJECT / "reports" / "cpu" / "claims" / "health.csv", keep_default_na=False)
    dead = set(health.loc[health["alive"] == "no", "paper"] + ":" + health.loc[health["alive"] == "no", "variant"])
    inside = []
    for cid in led.index[led["verdict"] == "does not hold"]:
        c = claims.loc[cid]
        models = {m.split(" terms ")[0].strip() for m in c["model"].split(";") if m.strip()}
        assert not models & dead, f"{cid} does not hold on a dead model {models & dead}"
        rule, _, query = c["check"].partition("|")
        if not c["evidence"]:
            continue
        df = pd.read_csv(PROJECT / "reports" / "cpu" / c["evidence"])
        df = df.query(query.strip(), engine="python") if query.strip() else df
        if rule.startswith("verdicts"):
            failing = df[df["verdict"] == "does not hold"]
            if len(failing) and failing["note"].str.contains("not resolved").all():
                inside.append(cid)
        elif rule.startswith(("better", "best")) and c["noise"]:
            floor = L.noise_floor(c["noise"], PROJECT / "reports", ("cpu",))
            wide = df.pivot_table(index="row", columns="metric", values="ours", aggfunc="first") if "ours" in df else \
                df.set_index(df.columns[0])
            a = rule.split()[1]
            b = rule.split(" than ")[1].strip() if rule.startswith("better") else None
            gaps = []
            for m in [m for m in wide.columns if m in floor]:
                col = wide[m].dropna().astype(float)
                if a not in col.index:
                    continue
                other = col[b] if b else col.drop(index=a).sub(col[a]).abs().min() + col[a]
                gaps.append(abs(col[a] - other) >= floor[m])
            if gaps and not any(gaps):
                inside.append(cid)
    assert inside == [], f"'does not hold' resting only on differences inside the noise floor: {inside}"
