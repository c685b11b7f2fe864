"""Control arm level 1 for LRRNet, the base of LRCFuse (issue 30; docs/control-arm.md): the authors'
own trainer (``reference_code/lrrnet/train/training_fusion_lrr.py``, its ``main()`` itself, driven by
:func:`fusionlib.lrcfuse.control.authors_lrrnet_run` with the shims it lists) and ours
(:func:`fusionlib.lrcfuse.train.train` with LRRNet's loss weights), from the same weights, on the same
pairs, with the same loss network behind their ``Vgg16``, give equal loss terms and equal parameters.

Their loop prints its weighted loss terms every 10 steps, as the mean of those 10 steps, and nothing
per step: the comparison is that first line against the mean of our first 10 logged steps, after
which the parameters are compared (:func:`fusionlib.control.step_agreement`). Their loader casts to
float32, so both arms run in float32, and their line rounds to 6 decimals. Once from a seeded
initialisation (n = 16, 64² images) and once from the released weights (n = 128, 32² images).

The bounds come from their own loop: it shuffles the pairs with Python's ``random``, and rerun with
another order (the same batch, summed in another order) it differs from itself a little after 10 steps
(soft thresholds flip). Notebook 13 §2 measures that floor, ours against theirs, and what leaving out
their weight decay or using notebook 12's rate does to the updates (``reports/<profile>/lrcfuse/
control_agreement.csv``); the bounds (1e-4 on the parameters, 2e-2 on the updates) sit above the floor
and far below those deviations. A loss weight off shows in the terms.
"""

import pytest
import torch

from fusionlib.common.lrrnet import LRRNet, load_official
from fusionlib.common.perceptual import loss_network
from fusionlib.control import reference_root, step_agreement
from fusionlib.data import find_pairs
from fusionlib.data.patches import PatchDataset
from fusionlib.data.synthetic import materialize
from fusionlib.lrcfuse import control as C
from fusionlib.lrcfuse.loss import LRRNET_WEIGHTS
from fusionlib.lrcfuse.train import train
from fusionlib.train import TrainConfig

pytestmark = pytest.mark.authors_code
STEPS, B = 10, 2  # their first loss line comes after 10 steps; one batch of B pairs per epoch
TERMS = ("pixel", "shallow", "middle", "deep", "loss")


@pytest.fixture(scope="module")
def setting():
    """The loss network both arms use and their Adam's learning rate (their args.py)."""
    try:
        reference_root("lrrnet")
        vgg, _ = loss_network("lrrnet", "normalised")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return vgg, C.their_rate()


def both_arms(tmp_path, initial, setting, size, n):
    vgg, lr = setting
    pairs = C.grey_crops(find_pairs(materialize(tmp_path / "scenes", n=B, seed=1, size=(size, size + 8)))[:B], size,
                         tmp_path / "pairs")
    theirs = C.authors_lrrnet_run(C.their_layout(pairs, tmp_path / "theirs"), initial, vgg, epochs=STEPS,
                                  batch_size=B, size=size)
    config = TrainConfig(epochs=STEPS, batch_size=B, lr=lr, weight_decay=C.OPTIMISER["weight_decay"], log_every=1)
    ours, log = train(PatchDataset(tmp_path / "pairs", size, size), config, tmp_path / "ours", vgg,
                      loss_weights=LRRNET_WEIGHTS, model_kwargs={"n": n}, model_cls=LRRNet, initial=initial)
    assert len(theirs["losses"]) == 1 and len(log) == STEPS
    line = theirs["losses"][0]
    mean = {t: sum(row[t] for row in log) / STEPS for t in TERMS}
    return line, mean, step_agreement(initial, ours.state_dict(), theirs["final"])


def check(line, mean, params, updates):
    for term in TERMS:  # their 6 decimals, and float32 sums over the batch
        assert abs(mean[term] - line[term]) <= max(2e-6 * line[term], 1e-6), (term, mean[term], line[term])
    assert params <= 1e-4 and updates <= 2e-2, (params, updates)


def test_ten_steps_from_a_seeded_start_equal_theirs(tmp_path, setting):
    torch.manual_seed(0)
    initial = LRRNet(n=16).state_dict()
    line, mean, (params, updates) = both_arms(tmp_path, initial, setting, 64, 16)
    check(line, mean, params, updates)


def test_ten_steps_from_the_released_weights_equal_theirs(tmp_path, setting):
    try:
        initial = load_official().state_dict()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    line, mean, (params, updates) = both_arms(tmp_path, initial, setting, 32, 128)
    check(line, mean, params, updates)
