"""fusionlib.checkpoints: manifest round trip, fp16 equality, strict keys, checksum and file errors,
where files go and where load() finds them, and bit-identical checkpoints from repeated training."""

import csv
import shutil

import pytest
import torch
import torch.nn as nn

from fusionlib import checkpoints as ck
from fusionlib.train import TrainConfig, Trainer

META = dict(paper="toy", variant="main", steps=3, epochs=1, wall_seconds=1.23, device="cpu", profile="test",
            data_checksum="abc", loss_network="none", command="python -c pass")


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 1, 1))


def test_round_trip_fp16_and_manifest(tmp_path):
    net = _net()
    entry = ck.save(net, "toy-main", root=tmp_path, **META)
    assert (tmp_path / "checkpoints" / "toy-main.pt").is_file() and entry.dtype == "float16"
    rows = list(csv.DictReader((tmp_path / "checkpoints" / "MANIFEST.csv").open()))
    assert list(rows[0]) == ck.MANIFEST_COLUMNS and rows[0]["sha256"] == entry.sha256 and rows[0]["steps"] == "3"
    other = _net(seed=1)
    got = ck.load_into(other, "toy-main", root=tmp_path)
    assert got == ck.manifest(tmp_path)["toy-main"]
    for (k, a), b in zip(net.state_dict().items(), other.state_dict().values()):
        if a.is_floating_point():  # fp16 storage: relative error ≤ 2⁻¹¹ of each value (plus subnormals)
            torch.testing.assert_close(b, a, rtol=2 ** -11, atol=1e-7, msg=k)
        else:
            assert torch.equal(a, b), k
    state, _ = ck.load("toy-main", root=tmp_path)
    assert all(v.dtype == torch.float16 for k, v in state.items() if v.is_floating_point())


def test_an_entry_names_the_notebook_its_command_runs(tmp_path):
    assert ck.save(_net(), "toy-a", root=tmp_path, **{**META, "command": "make reproduce PROFILE=cpu ONLY=42_"}).notebook == "42_"
    assert ck.save(_net(), "toy-b", root=tmp_path, **META).notebook == ""  # a command that runs no notebook


def test_save_twice_replaces_the_row_and_is_byte_identical(tmp_path):
    a = ck.save(_net(), "toy", root=tmp_path, **META)
    b = ck.save(_net(), "toy", root=tmp_path, **{**META, "steps": 4})
    assert a.sha256 == b.sha256 and list(ck.manifest(tmp_path)) == ["toy"] and ck.manifest(tmp_path)["toy"].steps == 4


def test_corrupted_copy_fails_with_one_line(tmp_path):
    ck.save(_net(), "toy", root=tmp_path, **META)
    path = tmp_path / "checkpoints" / "toy.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_into(_net(), "toy", root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "toy.pt" in msg and "sha256" in msg and "python -c pass" in msg


def test_key_errors_name_the_keys(tmp_path):
    ck.save(_net(), "toy", root=tmp_path, **META)
    wider = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 1, 1), nn.ReLU(), nn.Conv2d(1, 1, 1))
    with pytest.raises(ck.CheckpointError) as err:
        ck.load_into(wider, "toy", root=tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "missing 2 (4.bias, 4.weight)" in msg and "mis-shaped" in msg and "0.weight (4, 1, 3, 3)≠(8, 1, 3, 3)" in msg
    with pytest.raises(ck.CheckpointError, match=r"unexpected 2 \(2.bias, 2.weight\)"):
        ck.load_into(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)), "toy", root=tmp_path)


def test_unknown_missing_and_bad_saves(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_WEIGHTS", str(tmp_path / "weights"))
    with pytest.raises(ck.CheckpointError, match="'nope' is not in .*MANIFEST.csv"):
        ck.load("nope", root=tmp_path)
    ck.save(_net(), "toy", root=tmp_path, **META)
    (tmp_path / "checkpoints" / "toy.pt").unlink()
    with pytest.raises(ck.CheckpointError, match="toy.pt not found in .*regenerate it with `python -c pass`"):
        ck.load("toy", root=tmp_path)
    broken = _net()
    with torch.no_grad():
        broken[0].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ck.CheckpointError, match="non-finite"):
        ck.save(broken, "nan", root=tmp_path, **META)
    with pytest.raises(ck.CheckpointError, match="name"):
        ck.save(_net(), "a/b", root=tmp_path, **META)


def test_large_files_go_to_large_and_are_found_in_weights_trained(tmp_path, monkeypatch):
    monkeypatch.setattr(ck, "COMMIT_LIMIT_BYTES", 100)
    entry = ck.save(_net(), "big", root=tmp_path, **META)
    large = tmp_path / "checkpoints" / "large" / "big.pt"
    assert large.is_file()
    trained = tmp_path / "weights" / "trained"
    trained.mkdir(parents=True)
    shutil.move(large, trained / "big.pt")
    monkeypatch.setenv("FUSIONLIB_WEIGHTS", str(tmp_path / "weights"))
    _, path = ck.find("big", root=tmp_path)
    assert path == trained / "big.pt" and ck.load("big", root=tmp_path)[1].sha256 == entry.sha256


class _Toy(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"x": torch.rand(1, 8, 8, generator=g)}


def _train(run_dir):
    net = _net()
    def loss(model, batch):
        value = ((model(batch["x"]) - batch["x"][:, :, 1:-1, 1:-1]) ** 2).mean()
        return value, {"mse": float(value.detach())}
    cfg = TrainConfig(seed=0, batch_size=2, epochs=1, max_steps=3, lr=1e-2)
    Trainer(net, loss, _Toy(), cfg, run_dir=run_dir).fit(resume=False)
    return net


def test_training_twice_gives_the_same_sha256(tmp_path):
    """Seeded CPU training is deterministic, so a regenerated checkpoint matches its manifest row."""
    a = ck.save(_train(tmp_path / "a"), "run", root=tmp_path / "1", **META)
    b = ck.save(_train(tmp_path / "b"), "run", root=tmp_path / "2", **META)
    assert a.sha256 == b.sha256


def test_cli_verify_reports_a_bad_copy(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ck, "checkpoints_dir", lambda root=None: tmp_path / "checkpoints")
    ck.save(_net(), "good", **META)
    ck.save(_net(seed=1), "bad", **META)
    assert ck.main(["verify"]) == 0
    (tmp_path / "checkpoints" / "bad.pt").write_bytes(b"not a checkpoint")
    assert ck.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "good: ok" in out and "bad: CHECKSUM MISMATCH" in out


def test_available_and_describe(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_WEIGHTS", str(tmp_path / "weights"))
    assert ck.available("toy", root=tmp_path) is None
    ck.save(_net(), "toy-main", root=tmp_path, model_kwargs={"n": 4}, **META)
    ck.save(_net(), "toy-ablation", root=tmp_path, **{**META, "variant": "no-cfpm"})
    entry = ck.available("toy", root=tmp_path)
    assert entry.name == "toy-main" and entry.model_kwargs() == {"n": 4}
    assert ck.available("toy", "no-cfpm", root=tmp_path).model_kwargs() == {}
    assert ck.describe(entry) == "toy-main: 3 steps, test profile on cpu, loss network none"
    (tmp_path / "checkpoints" / "toy-main.pt").unlink()
    assert ck.available("toy", root=tmp_path) is None  # a row without its file adds no table row
    # a later row of the same variant whose file is present (a -regen copy) is found past the absent one
    ck.save(_net(seed=2), "toy-main-regen", root=tmp_path, **META)
    assert ck.available("toy", root=tmp_path).name == "toy-main-regen"


def test_trained_model_builds_loads_and_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_WEIGHTS", str(tmp_path / "weights"))
    assert ck.trained_model("toy", nn.Linear, root=tmp_path) == (None, None) and ck.row_note(None) == ""
    source = nn.Linear(3, 2)
    ck.save(source, "toy-main", root=tmp_path, model_kwargs={"in_features": 3, "out_features": 2}, **META)
    entry, model = ck.trained_model("toy", nn.Linear, root=tmp_path)
    assert isinstance(model, nn.Linear) and not model.training
    torch.testing.assert_close(model.weight, source.weight, rtol=2 ** -11, atol=1e-7)
    assert ck.row_note(entry) == "; row 'toy-main': toy-main: 3 steps, test profile on cpu, loss network none"


def test_fp16_overflow_is_refused(tmp_path):
    net = nn.Linear(2, 2)
    with torch.no_grad():
        net.weight[0, 0] = 1e6  # beyond fp16's 65504
    with pytest.raises(ck.CheckpointError, match="overflow torch.float16; save with dtype=torch.float32"):
        ck.save(net, "big", root=tmp_path, **META)
    assert ck.save(net, "big", root=tmp_path, dtype=torch.float32, **META).dtype == "float32"


def test_rename_key_first_match_wins_with_index_shifts_and_inner_renames():
    from fusionlib.checkpoints import rename_key
    renames = ((r"^net\.enc(?P<i>\d)\.", r"body.<\g<i>-1>."), (r"^net\.dec(?P<i>\d)\.", r"body.<\g<i>+3>."), (r"^net\.", "body."))
    inner = ((r"\.qkv1\.", ".qkv.0."),)
    assert rename_key("net.enc1.qkv1.weight", renames, inner) == "body.0.qkv.0.weight"
    assert rename_key("net.dec2.bias", renames, inner) == "body.5.bias"
    assert rename_key("net.other.weight", renames, inner) == "body.other.weight"  # the catch-all comes last
    assert rename_key("elsewhere.weight", renames, inner) is None


def test_a_dry_run_points_the_manifest_elsewhere(tmp_path, monkeypatch):
    """$FUSIONLIB_CHECKPOINTS (set by a --dry-run) moves the manifest and the files; an explicit root wins."""
    monkeypatch.setenv("FUSIONLIB_CHECKPOINTS", str(tmp_path / "scratch"))
    assert ck.checkpoints_dir() == tmp_path / "scratch"
    assert ck.checkpoints_dir(tmp_path / "root") == tmp_path / "root" / "checkpoints"
    monkeypatch.delenv("FUSIONLIB_CHECKPOINTS")
    assert ck.checkpoints_dir().name == "checkpoints" and ck.checkpoints_dir() != tmp_path / "scratch"
