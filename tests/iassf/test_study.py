"""IASSF's door into the study layer (fusionlib.iassf.study): what it hands the ledger, the benchmark and the book."""

from fusionlib.iassf.model import IASSF
from fusionlib.iassf.study import PAPER
from fusionlib.study.ledger import paper_recipe
from fusionlib.study.reports import load_paper_values


def test_the_door_checks_the_code_and_the_papers_own_numbers():
    found = []
    PAPER.consistency(load_paper_values("iassf"), lambda *row: found.append(row))
    assert [(r[0], r[3]) for r in found] == [("X7", True), ("X8", False), ("X9", False)]
    ok, finding = PAPER.code_checks["iassf_blocks_add_parameters"][0]()
    assert not ok and "each block adds" in finding  # the paper's "substantial" does not hold: under 1 % a block
    assert PAPER.recipe is None and paper_recipe("iassf").text == "300 epochs of 1,083 pairs (batch 6), 256² crops"


def test_the_door_builds_the_benchmarked_model():
    spec = PAPER.methods["main"]
    assert isinstance(spec.build(blocks=1), IASSF) and spec.sets == "both" and PAPER.tables_notebook == "32_"
