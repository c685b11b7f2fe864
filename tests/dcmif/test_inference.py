"""Running a DCMIF (fusionlib.dcmif.inference): one pass per image shared by every caller, the test pairs."""

import torch

from fusionlib.dcmif import inference
from fusionlib.dcmif.inference import build_model, fuser, images_of
from fusionlib.dcmif.train import Variant


def test_images_of_is_one_pass_per_image_shared_by_the_fusers():
    model = build_model(Variant(prompt="none", kernel=3), None)
    calls = []
    model.register_forward_hook(lambda *_: calls.append(1))
    y = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    first = images_of(model, y)
    assert set(first) == {"pir0", "pir", "fused"} and first["pir"].min() >= 0 and first["pir"].max() <= 1
    assert images_of(model, y.clone()) is first and len(calls) == 1  # memoised by content, not by object
    rgb = y.expand(1, 3, 16, 16)
    assert fuser(model)(None, rgb).shape == (1, 3, 16, 16)  # the IR argument is ignored: DCMIF sees the visible image only


def test_test_pairs_of_a_dataset_that_is_not_there_is_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_DATA", str(tmp_path))
    assert inference.test_pairs("msrs", 3) == []
