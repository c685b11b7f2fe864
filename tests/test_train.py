"""fusionlib.train: learning, checkpoints, bit-exact resume, DDP through torchrun (CPU, gloo)."""

import math
import os
import subprocess
import sys
import textwrap
from dataclasses import replace as dataclasses_replace
from pathlib import Path

import pytest
import torch

from fusionlib.train import TrainConfig, Trainer, seed_everything


class Toy(torch.utils.data.Dataset):
    def __init__(self, n=32):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 3, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def mse(model, batch):
    err = model(batch["x"]) - batch["y"]
    return err.square().mean(), {"mae": err.abs().mean().item()}


def make(run_dir, epochs):
    seed_everything(0)
    model = torch.nn.Linear(3, 1)
    return Trainer(model, mse, Toy(), TrainConfig(epochs=epochs, batch_size=8, lr=0.05, seed=3), run_dir, "cpu")


def test_learns_and_records_history(tmp_path):
    history = make(tmp_path, 30).fit()
    assert [h["epoch"] for h in history] == list(range(1, 31)) and history[-1]["step"] == 120
    assert history[-1]["loss"] < 0.1 * history[0]["loss"] and "mae" in history[0]
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 30 and ckpt["config"]["lr"] == 0.05 and set(ckpt) >= {"model", "optimizer"}


def test_resume_is_bit_exact(tmp_path):
    straight = make(tmp_path / "a", 2)
    straight.fit()
    make(tmp_path / "b", 1).fit()            # stop after one epoch ...
    resumed = make(tmp_path / "b", 2)         # ... a new process would start like this
    resumed.fit()
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.history == straight.history


def test_lr_milestones_are_stepped_and_resumed(tmp_path):
    seed_everything(0)
    config = TrainConfig(epochs=4, batch_size=8, lr=0.08, seed=3, lr_milestones=(1, 3), lr_gamma=0.5)
    history = Trainer(torch.nn.Linear(3, 1), mse, Toy(), config, tmp_path / "a", "cpu").fit()
    assert [h["lr"] for h in history] == [0.08, 0.04, 0.04, 0.02]  # the LR of each epoch
    seed_everything(0)
    Trainer(torch.nn.Linear(3, 1), mse, Toy(), dataclasses_replace(config, epochs=2), tmp_path / "b", "cpu").fit()
    resumed = Trainer(torch.nn.Linear(3, 1), mse, Toy(), config, tmp_path / "b", "cpu")
    assert resumed.fit() == history                                  # the schedule survives a restart


def test_cosine_schedule_and_adamw(tmp_path):
    config = TrainConfig(epochs=4, batch_size=8, lr=0.1, lr_schedule="cosine", lr_min=0.01, optimizer="adamw", weight_decay=0.01)
    trainer = Trainer(torch.nn.Linear(3, 1), mse, Toy(), config, tmp_path, "cpu")
    history = trainer.fit()
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert [h["lr"] for h in history] == pytest.approx(expected)
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer(torch.nn.Linear(3, 1), mse, Toy(), TrainConfig(lr_schedule="step"), tmp_path / "x", "cpu")


def test_warmup_ramps_the_first_epoch(tmp_path):
    lrs = []

    def spy(model, batch):
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
        return mse(model, batch)
    config = TrainConfig(epochs=3, batch_size=8, lr=0.08, warmup_epochs=1, lr_milestones=(2,))
    trainer = Trainer(torch.nn.Linear(3, 1), spy, Toy(), config, tmp_path, "cpu")
    trainer.fit()
    assert lrs[:4] == pytest.approx([0.02, 0.04, 0.06, 0.08]) and lrs[4:8] == pytest.approx([0.08] * 4)
    assert lrs[8:] == pytest.approx([0.04] * 4)  # the milestone still applies after the warm-up


class EpochToy(Toy):
    """Records the epochs the trainer announces (random crops of PairedDataset depend on them)."""
    def __init__(self):
        super().__init__()
        self.epochs = []

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


def test_dataset_epoch_is_set(tmp_path):
    data = EpochToy()
    Trainer(torch.nn.Linear(3, 1), mse, data, TrainConfig(epochs=3, batch_size=8), tmp_path, "cpu").fit()
    assert data.epochs == [0, 1, 2]


def test_max_steps_stops_early(tmp_path):
    t = make(tmp_path, 10)
    t.config.max_steps = 3
    t.fit()
    assert t.step == 3


def test_a_finished_run_reused_returns_its_history(tmp_path):
    """A run that max_steps cut inside an epoch, loaded again with the same config: nothing is
    trained and the history is the one it ended with (it came back empty, and a notebook failed)."""
    first = make(tmp_path, 10)
    first.config.max_steps = 3
    history = first.fit()
    again = make(tmp_path, 10)
    again.config.max_steps = 3
    assert again.fit() == history and len(history) == 1 and history[0]["step"] == 3 and again.step == 3


def test_ddp_with_torchrun(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(f"""
        import torch
        from tests.test_train import Toy, mse
        from fusionlib.train import TrainConfig, Trainer, seed_everything
        seed_everything(0)
        t = Trainer(torch.nn.Linear(3, 1), mse, Toy(), TrainConfig(epochs=2, batch_size=4, lr=0.05), {str(tmp_path / 'run')!r}, "cpu")
        h = t.fit()
        open({str(tmp_path)!r} + f"/rank{{t.rank}}.txt", "w").write(f"{{t.step}} {{h[-1]['loss']}}")
    """))
    root = Path(__file__).resolve().parent.parent  # the checkout, on PYTHONPATH for the workers
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
                           str(script)], capture_output=True, text=True, timeout=300, cwd=root,
                          env={**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    # each rank reports through its own file (their stdout lines interleave)
    steps = [int((tmp_path / f"rank{r}.txt").read_text().split()[0]) for r in (0, 1)]
    assert steps == [8, 8]  # 32 samples, 2 ranks, batch 4: 4 steps per epoch on each rank, 2 epochs
    assert (tmp_path / "run" / "last.pt").is_file()


def test_scaled_schedule():
    cfg = TrainConfig(epochs=10, max_steps=7, lr_milestones=(5, 8), batch_size=3)
    half = cfg.scaled(0.25)
    assert (half.epochs, half.max_steps, half.lr_milestones, half.batch_size) == (3, 2, (5, 8), 3)
    assert cfg.scaled(1.0) == cfg and cfg.scaled(1.0) is not cfg
    assert TrainConfig(epochs=1).scaled(0.01).epochs == 1 and TrainConfig(max_steps=None).scaled(0.5).max_steps is None
    with pytest.raises(ValueError, match="fraction"):
        cfg.scaled(0)


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    """Issue 12 item 6: empty, truncated, foreign, NaN and other-model checkpoints name the file and the problem."""
    trainer = make(tmp_path / "run", 1)
    good = trainer.save()
    cases = {"empty": b"", "truncated": good.read_bytes()[:200]}
    for name, raw in cases.items():
        (tmp_path / f"{name}.pt").write_bytes(raw)
        with pytest.raises(ValueError, match=rf"checkpoint .*{name}.pt cannot be read") as err:
            trainer.load(tmp_path / f"{name}.pt")
        assert "\n" not in str(err.value)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="foreign.pt is not a fusionlib Trainer checkpoint .no model, optimizer"):
        trainer.load(tmp_path / "foreign.pt")
    state = trainer.state()
    state["model"] = {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(ValueError, match="nan.pt has non-finite weights in .'weight'"):
        trainer.load(tmp_path / "nan.pt")
    other = Trainer(torch.nn.Linear(3, 2), mse, Toy(), TrainConfig(), tmp_path / "other", "cpu")
    with pytest.raises(ValueError, match=r"last.pt holds another model's weights"):
        other.load(good)
    trainer.load(good)  # the good one still loads


def test_resume_rules(tmp_path):
    """Issue 12 item 4: a changed lr or batch size, a longer run than asked, an empty epoch and a stale
    temporary each get a clear rule."""
    make(tmp_path / "run", 2).fit()
    changed = make(tmp_path / "run", 3)
    changed.config = dataclasses_replace(changed.config, lr=0.1, batch_size=4)
    with pytest.raises(ValueError, match=r"another configuration \(batch_size: 8 -> 4, lr: 0.05 -> 0.1\).*allow_config_change"):
        changed.fit()
    changed.fit(allow_config_change=True)  # the explicit override
    assert changed.epoch == 3
    with pytest.raises(ValueError, match="already holds 3 epochs .* more than the 1 epochs"):
        make(tmp_path / "run", 1).fit(allow_config_change=True)
    (tmp_path / "run" / ".last.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    make(tmp_path / "run", 3).fit(allow_config_change=True)
    assert not list((tmp_path / "run").glob(".*.tmp"))
    tiny = Trainer(torch.nn.Linear(3, 1), mse, Toy(n=4), TrainConfig(epochs=1, batch_size=8), tmp_path / "tiny", "cpu")
    with pytest.raises(ValueError, match=r"batch size 8 is larger than the dataset \(4 items\)"):
        tiny.fit()


def test_step_log_rows_every_k_steps_and_survive_a_resume(tmp_path):
    """log_every = k: one row per k steps with the mean of those steps; resuming mid-window continues it."""
    t = make(tmp_path / "a", 2)
    t.config.log_every = 3
    t.fit()  # 2 epochs × 4 steps: rows at steps 3 and 6 (steps 7-8 are an open window)
    assert [r["step"] for r in t.step_log] == [3, 6] and {"loss", "mae", "lr", "epoch"} <= set(t.step_log[0])
    cut = make(tmp_path / "b", 2)
    cut.config = dataclasses_replace(cut.config, log_every=3, max_steps=5)
    cut.fit()
    resumed = make(tmp_path / "b", 2)
    resumed.config = dataclasses_replace(resumed.config, log_every=3)
    resumed.fit()
    assert resumed.step_log == t.step_log
    every = make(tmp_path / "c", 2)  # the same seeded run logged every step: the rows above are its means
    every.config.log_every = 1
    every.fit()
    per_step = [r["loss"] for r in every.step_log]
    assert len(per_step) == 8
    assert [r["loss"] for r in t.step_log] == pytest.approx([sum(per_step[:3]) / 3, sum(per_step[3:6]) / 3])


def test_run_summary_reports_steps_epochs_and_summed_wall_time(tmp_path):
    from fusionlib.train import run_summary
    t = make(tmp_path, 2)
    t.config.max_steps = 6  # 1 epoch of 4 steps + 2 steps of the second
    t.fit()
    first = run_summary(tmp_path)
    assert first["steps"] == 6 and first["epochs"] == 2 and first["wall_seconds"] > 0
    resumed = make(tmp_path, 2)
    resumed.fit()
    after = run_summary(tmp_path)
    assert after["steps"] == 8 and after["epochs"] == 2 and after["wall_seconds"] > first["wall_seconds"]


def test_a_nan_loss_stops_before_its_step_and_saves_nothing_from_it(tmp_path):
    calls = []

    def blows_up(model, batch):  # finite for 5 steps, then NaN
        calls.append(1)
        loss, logs = mse(model, batch)
        return (loss * float("nan") if len(calls) > 5 else loss), logs
    seed_everything(0)
    trainer = Trainer(torch.nn.Linear(3, 1), blows_up, Toy(), TrainConfig(epochs=3, batch_size=8, lr=0.05), tmp_path, "cpu")
    with pytest.raises(FloatingPointError, match=r"non-finite loss \(nan\) at step 6 \(epoch 2, batch 2\).*last.pt holds the last good state"):
        trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # the NaN step was never taken
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["step"] == 4 and all(torch.isfinite(v).all() for v in saved["model"].values())


def test_a_resume_on_changed_data_is_refused(tmp_path):
    make(tmp_path / "run", 1).fit()
    other = make(tmp_path / "run", 2)
    other.dataset = Toy(n=24)  # another dataset in the same run folder
    with pytest.raises(ValueError, match=r"was trained on other data \(32 items.*now 24 items"):
        other.fit()
    other.fit(allow_config_change=True)  # the explicit override
    assert other.epoch == 2


def test_the_data_fingerprint_covers_file_contents(tmp_path):
    from fusionlib.data import PairedDataset
    from tests.conftest import write_split
    folder = write_split(tmp_path / "d" / "train", ["a.png", "b.png", "c.png"])
    ds = PairedDataset(folder, crop=16)
    trainer = Trainer(torch.nn.Linear(3, 1), mse, ds, TrainConfig(), tmp_path / "r", "cpu")
    before = trainer.data_fingerprint()
    img = sorted((folder / "ir").iterdir())[0]
    img.write_bytes(img.read_bytes())  # same bytes: same fingerprint
    assert Trainer(torch.nn.Linear(3, 1), mse, PairedDataset(folder, crop=16), TrainConfig(), tmp_path / "r", "cpu").data_fingerprint() == before
    import numpy as np
    from fusionlib.io import read_image, write_image
    arr = read_image(img)
    write_image(img, np.ascontiguousarray(255 - arr))  # changed content, same names and count
    changed = Trainer(torch.nn.Linear(3, 1), mse, PairedDataset(folder, crop=16), TrainConfig(), tmp_path / "r", "cpu")
    assert changed.data_fingerprint()["items"] == before["items"] and changed.data_fingerprint() != before


def test_last_doubling_is_the_mean_change_over_the_last_doubling_with_a_bootstrap_interval():
    from fusionlib.train import last_doubling
    rows = [{"step": k, "image": i, "m": v} for k, vals in ((0, (0, 0, 0)), (2, (1, 1, 1)), (4, (2, 3, 4)), (8, (3, 5, 7)))
            for i, v in zip("abc", vals)]
    got = last_doubling(rows, 8, "m")
    assert (got["from"], got["to"], got["images"]) == (4, 8, 3) and got["change"] == 2.0  # (1 + 2 + 3) / 3
    assert 1.0 <= got["low"] <= got["change"] <= got["high"] <= 3.0
    assert last_doubling([r for r in rows if r["step"] in (0, 8)], 8, "m") is None  # no step in (0, 4]
