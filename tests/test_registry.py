"""A fifth paper plugs in through its door alone: registered here as a toy, it shows up in the benchmark,
the ledger, the timing table, the book and the exercises without an edit of the study layer."""

import dataclasses

import pandas as pd
import pytest
import torch
from torch import nn

from fusionlib import checkpoints
from fusionlib.common.rgb import fuse_rgb
from fusionlib.study import benchmark, book, exercises, ledger, registry, timing
from fusionlib.study.registry import CheckpointSpec, Paper


class Toy(nn.Module):
    """Fuses by a learnt mix of the two sources: one parameter."""

    def __init__(self):
        super().__init__()
        self.mix = nn.Parameter(torch.tensor(0.25))

    def forward(self, ir, y):
        return self.mix * ir + (1 - self.mix) * y


def _toy_fuser(model, device="cpu"):
    return fuse_rgb(lambda ir, y: model(ir, y))


def _toy_consistency(values, add):
    t = ledger.wide_table(values, "Table 1")
    add("X99", "Table 1: is Ours first on SD?", f"rank {ledger.rank_of(t, 'Ours', 'SD')}", ledger.rank_of(t, "Ours", "SD") == 1)


TOY = Paper(
    key="toy", title="Toy — a fifth paper, registered by a test", chapter="Toy", notebooks=("50_", "51_"),
    methods={"main": CheckpointSpec("Toy", Toy, _toy_fuser, "IR + VIS")},
    step_grid=((16, 1, "one parameter"),),
    train_seconds=lambda crop, batch, config, folder, what: {"toy": 0.5 * config.max_steps},  # 0.5 s a step, by fiat
    code_checks={"toy_has_one_parameter": (lambda: (sum(p.numel() for p in Toy().parameters()) == 1, "1 parameter"),
                                           "../tests/test_registry.py")},
    consistency=_toy_consistency, training_artefact="toy/training.csv", scored_artefact="toy/table1.csv",
    exercises=(exercises.Exercise("50", 1, "The toy's parameter count", "integer", lambda: 1, "Count them."),),
    assumes={"50": "00", "51": "50"},
)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_CHECKPOINTS", str(tmp_path / "checkpoints"))
    door = dataclasses.replace(TOY, values=tmp_path / "toy_values.csv")  # its hand-written inputs, where a package keeps them
    registry.register(door)
    yield door
    registry.unregister("toy")


def test_the_registry_finds_the_four_papers_through_their_doors_and_rejects_a_stranger():
    doors = registry.papers()
    assert list(doors)[:4] == ["lrcfuse", "dcmif", "iassf", "ldfusion"]  # reading order, by first notebook
    assert all(d.methods and d.step_grid and d.train_seconds and d.exercises and d.evidence for d in doors.values())
    with pytest.raises(KeyError, match="known papers are lrcfuse, dcmif"):
        registry.paper("toy")
    with pytest.raises(TypeError, match="takes a Paper"):
        registry.register({"key": "toy"})


def test_a_toy_paper_is_found_everywhere_without_touching_study_code(toy, tmp_path):
    assert registry.paper("toy") is toy and list(registry.papers())[-1] == "toy"
    assert toy.values_file == tmp_path / "toy_values.csv" and registry.paper("dcmif").values_file.name == "paper_values.csv"

    # the benchmark runs its checkpoint from the manifest
    checkpoints.save(Toy(), "toy-test", paper="toy", variant="main", steps=1, epochs=1, wall_seconds=0.0, device="cpu",
                     profile="smoke", data_checksum="none", loss_network="none", command="pytest", dtype=torch.float32)
    methods, missing = benchmark.methods()
    toy_rows = [m for m in methods if m.family == "Toy"]
    assert [m.name for m in toy_rows] == ["Toy [toy-test]"] and missing.empty
    ir, vis = torch.rand(1, 1, 8, 8), torch.rand(1, 3, 8, 8)
    assert toy_rows[0].fuser(ir, vis).shape == (1, 3, 8, 8)

    # the ledger: its internal-consistency check, its code check, the notebook that writes its tables
    pd.DataFrame({"table": "Table 1", "row": ["Ours", "Other"], "metric": "SD", "value": [40.0, 30.0],
                  "source": "tests/test_registry.py"}).to_csv(toy.values_file, index=False)
    checks = ledger.internal_checks()
    assert checks.set_index("id").loc["X99", ["paper", "consistent"]].tolist() == ["toy", True]
    assert checks["id"].tolist()[-1] == "X99" and len(checks) == 14  # X1-X13 of the four papers, then the toy's
    assert ledger.code_checks()["toy_has_one_parameter"][0]() == (True, "1 parameter")
    assert ledger.writers()["toy"] == "51_"

    # the timing table
    assert ("toy", 16, 1, "one parameter") in timing.step_grid()
    table = timing.step_seconds([("toy", 16, 1, "one parameter")], extra_steps=2)
    assert table[["paper", "s/step"]].values.tolist() == [["toy", 0.5]]

    # the book and the exercises
    assert book.chapters()["Toy"] == ("50", "51") and list(book.chapters())[-2] == "Toy"
    assert book.assumes()["51"] == "50"
    assert exercises.check("50", 1, 1) and not exercises.check("50", 1, 2)


def test_a_registered_paper_may_not_shadow_a_package():
    registry.register(Paper(key="dcmif", title="", chapter="", notebooks=("99_",)))
    try:
        with pytest.raises(ValueError, match="shadow"):
            registry.papers()
    finally:
        registry.unregister("dcmif")
