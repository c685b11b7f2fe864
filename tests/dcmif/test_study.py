"""DCMIF's door into the study layer (fusionlib.dcmif.study): what it hands the ledger, the benchmark and the book."""

from fusionlib.dcmif.model import DCMIF
from fusionlib.dcmif.study import PAPER
from fusionlib.study.reports import load_paper_values


def test_the_door_checks_the_code_and_the_papers_own_numbers():
    values = load_paper_values("dcmif")
    found = []
    PAPER.consistency(values, lambda *row: found.append(row))
    assert [(r[0], r[3]) for r in found] == [(f"X{i}", False) for i in range(1, 7)]  # spec/claims.md: six inconsistencies
    ok, finding = PAPER.code_checks["dcmif_visible_only"][0]()
    assert ok and "no infrared input" in finding
    recipe = PAPER.recipe(values)
    assert (recipe.images, recipe.crop) == (1000 * 536 + 2 * 10 * 536, 128) and "JSRL 1,000 epochs" in recipe.text


def test_the_door_builds_the_benchmarked_model_and_names_its_notebooks():
    spec = PAPER.methods["main"]
    model = spec.build(prompt="none", kernel=3)
    assert isinstance(model, DCMIF) and model.film is None and spec.clear_input_control and spec.sets == "both"
    assert PAPER.tables_notebook == "22_" and PAPER.book_notebooks == ("20", "21", "22", "23") and PAPER.required_health == ("H2", "H4", "H5")
