"""IASSF's training glue (fusionlib.iassf.train) on synthetic scenes: hazy triplets,
one joint training step, the fusers and the evaluation sets."""

import torch

from fusionlib.iassf import train as P
from fusionlib.iassf.inference import evaluation_sets, fuser
from fusionlib.train import TrainConfig


def test_train_and_fuse(isolated):
    data = P.training_set("msrs", 32)
    item = data[0]
    assert set(item) == {"name", "ir", "vis_hazy", "vis_clear"} and item["vis_hazy"].shape == (3, 32, 32)
    hazy, ir, clear = P.to_model_range({k: v[None] for k, v in item.items() if k != "name"})
    assert ir.shape == (1, 3, 32, 32) and -1 <= float(hazy.min()) and float(clear.max()) <= 1
    config = TrainConfig(epochs=1, batch_size=2, lr=2e-4, max_steps=1, optimizer="adamw", lr_schedule="cosine", lr_min=2e-6)
    model, history = P.train(data, config, isolated / "run", blocks=3, ablation="w/o HDE")
    assert history[0]["step"] == 1 and set(history[0]) >= {"l_int", "l_grad", "l_dehaze"}
    fused = fuser(model)(torch.rand(1, 1, 29, 41), torch.rand(1, 3, 29, 41))
    assert fused.shape == (1, 3, 29, 41) and 0 <= float(fused.min()) and float(fused.max()) <= 1
    assert [name for name, _ in evaluation_sets(["msrs", "roadscene"])] == ["synthetic_hazy"]
