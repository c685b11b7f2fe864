"""The LRCFuse training glue: one trainer epoch (the loss is tests/lrcfuse/test_loss.py, the patches tests/data/test_patches.py)."""

import numpy as np
import torch

from fusionlib.data.patches import PatchDataset
from fusionlib.lrcfuse.loss import MultiLevelLoss
from fusionlib.common.perceptual import load_vgg16
from fusionlib.lrcfuse.model import LRCFuse
from fusionlib.common.lrrnet import normalise
from fusionlib.train import TrainConfig, Trainer
from tests.conftest import write_split


def test_one_training_epoch_runs(tmp_path):
    split = write_split(tmp_path / "toy" / "train", ["a.png", "b.png"], size=(32, 32))
    torch.manual_seed(0)
    model = LRCFuse(n=4, blocks=1, fc=4, cfpm_stages=1)
    criterion = MultiLevelLoss(load_vgg16("random"))

    def step(net, b):
        out = net(normalise(b["ir"]), normalise(b["vis"]))["fused"]
        return criterion(out, b["ir"], b["vis"])
    history = Trainer(model, step, PatchDataset(split, size=16, stride=16), TrainConfig(epochs=1, batch_size=4),
                      tmp_path / "run", "cpu").fit()
    assert np.isfinite(history[0]["loss"]) and (tmp_path / "run" / "last.pt").is_file()


def test_learning_curve_is_the_uninterrupted_run_and_is_read_back(tmp_path):
    import pytest

    from fusionlib.data import find_pairs
    from fusionlib.lrcfuse import train as pipe
    from fusionlib.train import PastFirstStop
    split = write_split(tmp_path / "toy" / "train", ["a.png", "b.png"], size=(32, 32))
    held = find_pairs(write_split(tmp_path / "toy" / "test", ["c.png"], size=(32, 32)))
    patches = PatchDataset(split, size=16, stride=16)
    torch.manual_seed(0)
    vgg = load_vgg16("random")
    kwargs = dict(model_kwargs=dict(n=4, blocks=1, fc=4, cfpm_stages=1), sources="stretched")
    config = TrainConfig(epochs=3, batch_size=2, max_steps=5, log_every=1)
    curve = lambda folder, stops: pipe.learning_curve(patches, config, folder, vgg, held, stops, metrics=["EN", "SD"],  # noqa: E731
                                                      convention="lrrnet", **kwargs)
    model, log, rows = curve(tmp_path / "curve", [2, 9])
    assert [r["step"] for r in rows] == [0, 2, 5] and [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert rows[0]["image"] == "c.png" and rows[0]["SD"] != rows[-1]["SD"]  # the model moved
    once, _ = pipe.train(patches, config, tmp_path / "once", vgg, **kwargs)
    for (k, a), b in zip(model.state_dict().items(), once.state_dict().values()):
        assert torch.equal(a, b), k
    assert curve(tmp_path / "curve", [2, 9])[2] == rows  # read back, not retrained
    with pytest.raises(PastFirstStop, match="past the curve's first stop"):
        curve(tmp_path / "once", [2])
