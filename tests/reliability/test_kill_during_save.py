"""Issue 12 item 9: SIGKILL a real training run (LRCFuse's loop, a small model) in the middle of
writing a checkpoint; the previous ``last.pt`` still loads, and resuming reproduces the weights of
the uninterrupted run bit for bit."""

import os
import subprocess
import sys
import textwrap

import torch

TRAIN = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import torch
    from fusionlib.common.perceptual import load_vgg16
    from fusionlib.data.patches import PatchDataset
    from fusionlib.data.synthetic import materialize
    from fusionlib.lrcfuse.train import train
    from fusionlib.train import TrainConfig
    import fusionlib.io as fio

    run, kill_at = Path(sys.argv[1]), int(sys.argv[2])
    saves = []
    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("last.pt"):
            saves.append(dst)
            if len(saves) == kill_at:  # half of the new checkpoint is on disk, then the process dies
                with open(src, "r+b") as f:
                    f.truncate(os.path.getsize(src) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        real_replace(src, dst)
    fio.os.replace = replace
    torch.manual_seed(0)
    patches = PatchDataset(materialize(n=2, size=(32, 64)), size=16, stride=16)
    model, _ = train(patches, TrainConfig(epochs=3, batch_size=4, lr=1e-3), run, load_vgg16("random"),
                     model_kwargs=dict(n=4, blocks=1, fc=4, cfpm_stages=1), device="cpu")
    torch.save(model.state_dict(), run / "final.pt")
""")


def run_training(folder, kill_at, env):
    return subprocess.run([sys.executable, "-c", TRAIN, str(folder), str(kill_at)], env=env, capture_output=True,
                          text=True, timeout=300)


def test_sigkill_during_save_loses_one_epoch_at_most(tmp_path):
    env = {**os.environ, "FUSIONLIB_DATA": str(tmp_path / "nodata"), "FUSIONLIB_CACHE": str(tmp_path / "cache"),
           "TQDM_DISABLE": "1"}
    straight = run_training(tmp_path / "straight", 0, env)
    assert straight.returncode == 0, straight.stderr
    killed = run_training(tmp_path / "killed", 3, env)  # dies while saving epoch 3
    assert killed.returncode == -9
    run = tmp_path / "killed"
    assert len(list(run.glob(".last.pt.*.tmp"))) == 1  # the half-written temporary
    last = torch.load(run / "last.pt", weights_only=True)
    assert last["epoch"] == 2  # the previous checkpoint, whole
    resumed = run_training(run, 0, env)
    assert resumed.returncode == 0, resumed.stderr
    assert not list(run.glob(".last.pt.*.tmp"))  # cleaned on start
    a = torch.load(tmp_path / "straight" / "final.pt", weights_only=True)
    b = torch.load(run / "final.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(run / "last.pt", weights_only=True)["history"] == \
        torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["history"]
