"""LDFusion's door into the study layer (fusionlib.ldfusion.study): what it hands the ledger, the benchmark and the book."""

from fusionlib.ldfusion.model import LDFusion
from fusionlib.ldfusion.study import PAPER
from fusionlib.study.reports import load_paper_values


def test_the_door_checks_the_code_and_the_papers_own_numbers():
    found = []
    PAPER.consistency(load_paper_values("ldfusion"), lambda *row: found.append(row))
    assert [(r[0], r[3]) for r in found] == [("X10", False), ("X11", True), ("X12", False)]
    assert all(check()[0] for check, _ in PAPER.code_checks.values())


def test_the_door_names_the_ablation_and_the_authors_outputs():
    spec = PAPER.methods["wo_ldl"]
    assert spec.label == "LDFusion W/O LDL" and isinstance(spec.build(), LDFusion)
    assert [r.folder for r in PAPER.released_outputs] == ["ldfusion_demo/authors"]
    from fusionlib.study.device import papers
    assert PAPER.notebook_artefacts["42_"] == "ldfusion/twin_run_log.csv" and next(iter(papers())) == "ldfusion"  # first on a GPU
