"""Issue 12 item 4: every paper's real training loop resumes bit for bit.

Each case trains 4 steps straight, and 2 steps (``max_steps`` cuts the run inside an epoch) then a
resume to 4 in the same run folder — what a new process does after a stop — and compares every
weight and the history. Before the fix, LDFusion's noise and patch sampler restarted from their seed
and the cut epoch counted as complete, so the resumed run trained on other batches.
"""

import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from fusionlib.common.perceptual import load_vgg16, load_vgg19
from fusionlib.data.patches import PatchDataset
from fusionlib.data.synthetic import materialize
from fusionlib.train import TrainConfig, Trainer, seed_everything
from tests.ldfusion.test_clip import TinyClip

CUT = TrainConfig(epochs=3, batch_size=2, lr=1e-3, max_steps=2)  # an epoch of the 12 scenes has 6 steps


def assert_same_run(straight, resumed):
    (m1, h1), (m2, h2) = straight, resumed
    for (name, p), q in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(p, q), f"{name} differs after the resume"
    assert h1 == h2


def resume_case(train, tmp_path):
    """``train(config, run_dir) -> (model, history)``: 4 steps straight vs 2 + resume to 4."""
    straight = train(replace(CUT, max_steps=4), tmp_path / "straight")
    first = train(CUT, tmp_path / "cut")
    assert first[1][-1]["step"] == 2
    assert_same_run(straight, train(replace(CUT, max_steps=4), tmp_path / "cut"))


def test_lrcfuse(isolated):
    from fusionlib.lrcfuse.train import train
    patches = PatchDataset(materialize(n=3, size=(32, 64)), size=16, stride=16)  # 3 × 8 patches
    vgg = load_vgg16("random")
    resume_case(lambda cfg, run: train(patches, cfg, run, vgg, model_kwargs=dict(n=4, blocks=1, fc=4, cfpm_stages=1),
                                       device="cpu"), isolated)


def test_iassf(isolated):
    from fusionlib.iassf import train as P
    data = P.training_set("msrs", 32)
    resume_case(lambda cfg, run: P.train(data, cfg, run, blocks=3, ablation="w/o HDE"), isolated)


def test_ldfusion(isolated):
    from fusionlib.ldfusion import train as P
    from fusionlib.ldfusion.loss import LanguageDrivenLoss
    data = P.training_set("msrs", 128)  # below 128² no patch passes the entropy filter and training refuses
    torch.manual_seed(0)
    loss = LanguageDrivenLoss(TinyClip(), lambda texts: torch.arange(len(texts)), load_vgg19("random"), rounds=2)
    resume_case(lambda cfg, run: P.train(data, loss, replace(cfg, warmup_epochs=1), run), isolated)


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_dcmif_stages(isolated, stage):
    from fusionlib.dcmif import train as P
    data = P.training_set("msrs", 32)
    variant = P.Variant(prompt="none", kernel=3)
    if stage == 1:
        resume_case(lambda cfg, run: P.train_stage1(variant, data, cfg, run_dir=run)[:2], isolated)
        return
    one = TrainConfig(epochs=1, batch_size=2, max_steps=1)
    stage1, _, run1 = P.train_stage1(variant, data, one, run_dir=isolated / "s1")
    codec = P.build_codec(variant, stage1, data, "cpu", run1)
    if stage == 2:
        resume_case(lambda cfg, run: P.train_stage2(codec, None, data, cfg, run_dir=run), isolated)
        return
    vgii, _ = P.train_stage2(codec, None, data, one, run_dir=isolated / "s2")
    resume_case(lambda cfg, run: P.train_stage3(vgii, data, cfg, run_dir=run), isolated)


class Noisy(torch.utils.data.Dataset):
    """A dataset whose items are noisy with its own generator (the ``rng_state`` protocol)."""

    def __init__(self):
        self.g = torch.Generator().manual_seed(5)

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return {"x": torch.full((3,), float(i)) + torch.randn(3, generator=self.g)}

    def rng_state(self):
        return self.g.get_state()

    def set_rng_state(self, state):
        self.g.set_state(state)


def test_every_global_and_owned_generator_is_restored(tmp_path):
    """A step drawing from torch's, numpy's and python's global RNGs, a generator handed to the
    trainer and a dataset's own generator resumes bit for bit."""
    def run(cfg, folder):
        seed_everything(0)
        model, g = torch.nn.Linear(3, 1), torch.Generator().manual_seed(1)

        def step(net, batch):
            x = batch["x"] + torch.randn(batch["x"].shape) + torch.randn(batch["x"].shape, generator=g)
            x = x * float(np.random.rand()) * random.random()
            return net(torch.nn.functional.dropout(x, 0.5)).square().mean(), {}
        trainer = Trainer(model, step, Noisy(), cfg, folder, "cpu", generators={"noise": g})
        return model, trainer.fit()
    resume_case(run, tmp_path)
    trainer = Trainer(torch.nn.Linear(3, 1), lambda n, b: (n(b["x"]).sum(), {}), Noisy(), CUT, tmp_path / "cut", "cpu")
    with pytest.raises(ValueError, match=r"saved the random states of \['dataset', 'noise'\], this trainer has \['dataset'\]"):
        trainer.fit(allow_config_change=True)
