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
