"""LRCFuse's door into the study layer (fusionlib.lrcfuse.study): what it hands the ledger, the benchmark and the book."""

from fusionlib.common.lrrnet import LRRNet
from fusionlib.lrcfuse.model import LRCFuse
from fusionlib.lrcfuse.study import PAPER
from fusionlib.study.reports import load_paper_values


def test_the_door_checks_the_papers_own_numbers_and_reads_its_recipe():
    values = load_paper_values("lrcfuse")
    found = []
    PAPER.consistency(values, lambda *row: found.append(row))
    assert [(r[0], r[3]) for r in found] == [("X13", False)] and "1,444" not in found[0][2] and "(1,083) + test (361)" in found[0][2]
    recipe = PAPER.recipe(values)
    assert (recipe.images, recipe.crop) == (30 * 20_000, 128) and "1,444 pairs" in recipe.text
    assert PAPER.recipe_notes["lrrnet-retrained"].startswith("LRCFuse's")


def test_the_door_builds_both_benchmarked_models():
    assert isinstance(PAPER.methods["main"].build(), LRCFuse) and PAPER.methods["lrrnet-retrained"].build is LRRNet
    assert all(m.dehaze_first for m in PAPER.methods.values()) and PAPER.book_notebooks == ("10", "11", "12", "13")
