"""LDFusion's training glue on synthetic scenes with a stand-in CLIP: one step, the fuser, resizing."""

import torch

from fusionlib.data import find_pairs
from fusionlib.data.synthetic import materialize
from fusionlib.io import read_image
from fusionlib.ldfusion.loss import LanguageDrivenLoss
from fusionlib.common.perceptual import load_vgg19
from fusionlib.metrics.dataset import resized
from fusionlib.ldfusion import train as P
from fusionlib.train import TrainConfig
from tests.ldfusion.test_clip import TinyClip


def test_train_step_and_fuser(isolated):
    data = P.training_set("msrs", 48)
    loss = LanguageDrivenLoss(TinyClip(), lambda texts: torch.arange(len(texts)), load_vgg19("random"), rounds=2)
    config = TrainConfig(epochs=1, batch_size=2, lr=5e-4, max_steps=1, warmup_epochs=1, lr_milestones=(50, 60))
    model, history = P.train(data, loss, config, isolated / "run")
    assert history[0]["step"] == 1 and {"l_v", "l_g", "l_p", "phi"} <= set(history[0])
    fused = P.fuser(model)(torch.rand(1, 1, 37, 51), torch.rand(1, 3, 37, 51))
    assert fused.shape == (1, 3, 37, 51) and 0 <= float(fused.min()) and float(fused.max()) <= 1


def test_resized_short_side(isolated):
    samples = find_pairs(materialize(isolated / "pairs", n=1, size=(60, 90)))
    out = resized(samples, 120, "toy")
    assert read_image(out[0].paths["ir"]).shape[:2] == (120, 180) and read_image(out[0].paths["vi"]).shape[:2] == (120, 180)
    assert resized(samples, 0, "toy") == samples
