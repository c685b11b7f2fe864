"""fusionlib.data: layout, pairing errors, seeded crops and flips, whole-image evaluation."""

import os

import numpy as np
import pytest
import torch

from fusionlib import data, io
from tests.conftest import write_split


def test_pairs_and_items(split):
    ds = data.PairedDataset(split)
    assert [s.name for s in ds.samples] == ["a.png", "b.png", "c.png"]
    item = ds[1]
    assert item["name"] == "b.png"
    assert item["ir"].shape == (1, 20, 24) and item["vis"].shape == (3, 20, 24)
    expected = io.to_tensor(io.read_image(split / "vi" / "b.png"))[0]
    torch.testing.assert_close(item["vis"], expected)


def test_dataset_by_name_under_root(split, monkeypatch):
    root = split.parent.parent
    monkeypatch.setenv("FUSIONLIB_DATA", str(root))
    assert len(data.PairedDataset("toy", "test")) == 3
    assert data.list_datasets() == [("toy", "test")]


def test_missing_partner_listed(split):
    (split / "vi" / "b.png").unlink()
    io.write_image(split / "vi" / "extra.png", np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(data.PairingError) as e:
        data.find_pairs(split)
    msg = str(e.value)
    assert "2 of 4 names" in msg and "b.png: no partner in vi/" in msg and "extra.png: no partner in ir/" in msg


def test_size_mismatch_and_unreadable_listed(split):
    io.write_image(split / "vi" / "a.png", np.zeros((21, 24, 3), np.uint8))
    (split / "ir" / "c.png").write_bytes(b"garbage")
    with pytest.raises(data.PairingError) as e:
        data.find_pairs(split)
    msg = str(e.value)
    assert "a.png: sizes differ: ir 20×24, vi 21×24" in msg
    assert "c.png: unreadable ir/c.png" in msg


def test_skip_with_warning(split):
    (split / "vi" / "b.png").unlink()
    with pytest.warns(UserWarning, match="b.png"):
        ds = data.PairedDataset(split, on_error="skip")
    assert [s.name for s in ds.samples] == ["a.png", "c.png"]


def test_missing_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="FUSIONLIB_DATA"):
        data.find_pairs(tmp_path / "nothing")
    (tmp_path / "x" / "ir").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="vi/"):
        data.find_pairs(tmp_path / "x")
    with pytest.raises(ValueError, match="on_error"):
        data.find_pairs(tmp_path / "x", on_error="ignore")


def test_hazy_layout_detected(tmp_path):
    folder = write_split(tmp_path / "hz" / "test", ["n.png"], modalities=data.HAZY_MODALITIES)
    item = data.PairedDataset(folder)[0]
    assert set(item) == {"name", "ir", "vis_hazy", "vis_clear"}


def test_crops_seeded_and_aligned(split):
    ds = data.PairedDataset(split, crop=8, flip=True, seed=3)
    a, b = ds[0], ds[0]
    torch.testing.assert_close(a["vis"], b["vis"])  # same seed, epoch, index: same crop
    assert a["ir"].shape == (1, 8, 8) and a["vis"].shape == (3, 8, 8)
    # the IR crop is taken at the same place as the VIS crop: find it in the full IR image
    full = data.PairedDataset(split)[0]
    ir_full = full["ir"][0]
    windows = ir_full.unfold(0, 8, 1).unfold(1, 8, 1)  # (13, 17, 8, 8)
    vis_windows = full["vis"].unfold(1, 8, 1).unfold(2, 8, 1)
    variants = [lambda t: t, lambda t: t.flip(-1), lambda t: t.flip(-2), lambda t: t.flip(-1).flip(-2)]
    hits = [(i, j, k) for k, f in enumerate(variants) for i in range(13) for j in range(17)
            if torch.equal(f(windows[i, j]), a["ir"][0])]
    assert len(hits) >= 1
    i, j, k = hits[0]
    torch.testing.assert_close(variants[k](vis_windows[:, i, j]), a["vis"])


def test_rot90_turns_every_modality_together_and_keeps_the_other_draws(split):
    plain = data.PairedDataset(split, crop=8, flip=True, seed=5)
    turned = data.PairedDataset(split, crop=8, flip=True, rot90=True, seed=5)
    ks = set()
    for epoch in range(8):
        plain.set_epoch(epoch), turned.set_epoch(epoch)
        a, b = plain[1], turned[1]
        k = next(k for k in range(4) if torch.equal(torch.rot90(a["ir"], k, dims=(-2, -1)), b["ir"]))
        torch.testing.assert_close(torch.rot90(a["vis"], k, dims=(-2, -1)), b["vis"])  # same window, same turn
        ks.add(k)
    assert len(ks) > 1  # the turn is drawn, not fixed
    with pytest.raises(ValueError, match="rot90 needs a square crop"):
        data.PairedDataset(split, crop=(8, 10), rot90=True)


def test_epochs_and_seeds_change_crops(split):
    ds = data.PairedDataset(split, crop=(8, 10), seed=0)
    first = ds[0]["vis"]
    ds.set_epoch(1)
    assert not torch.equal(first, ds[0]["vis"])
    assert not torch.equal(first, data.PairedDataset(split, crop=(8, 10), seed=1)[0]["vis"])


def test_crop_too_large(split):
    with pytest.raises(ValueError, match="larger than a.png"):
        data.PairedDataset(split, crop=64)[0]


def test_dataloader_whole_images(split):
    loader = torch.utils.data.DataLoader(data.PairedDataset(split), batch_size=1)
    batch = next(iter(loader))
    assert batch["ir"].shape == (1, 1, 20, 24)


def test_checksum_tracks_content(split):
    ds = data.PairedDataset(split)
    c0 = ds.checksum()
    assert c0 == data.PairedDataset(split).checksum()
    io.write_image(split / "ir" / "a.png", np.zeros((20, 24), np.uint8))
    assert data.PairedDataset(split).checksum() != c0


def test_evenly_spaced_refuses_a_negative_count_instead_of_dropping_items():
    from fusionlib.data import evenly_spaced
    items = list(range(10))
    assert evenly_spaced(items, 0) == items and evenly_spaced(items, 3) == [0, 3, 6]
    assert evenly_spaced(items, np.int64(2)) == [0, 5]  # numpy integers from a table are fine
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match=r"n must be an integer ≥ 0 \(0 for all\)"):
            evenly_spaced(items, bad)


def test_repeat_lists_each_pair_with_its_own_crop_and_pad_reflects_small_pairs(tmp_path):
    """LDFusion's loader lists each pair 10 times an epoch, each listing its own random crop, and reflects
    an image smaller than the crop (RandomCrop(pad_if_needed, reflect)); without pad that is an error."""
    folder = write_split(tmp_path / "s", ["a.png", "b.png"], size=(20, 24))
    listed = data.PairedDataset(folder, crop=8, repeat=3, seed=0)
    assert len(listed) == 6 and listed[4]["name"] == "a.png" and listed[-1]["name"] == "b.png"
    assert not torch.equal(listed[0]["ir"], listed[2]["ir"])  # the same pair, another crop
    with pytest.raises(IndexError, match="out of range"):
        listed[6]
    with pytest.raises(ValueError, match="repeat must be"):
        data.PairedDataset(folder, repeat=0)
    with pytest.raises(ValueError, match="larger than"):
        data.PairedDataset(folder, crop=22)[0]
    big = data.PairedDataset(folder, crop=22, pad=True)[0]
    assert big["ir"].shape == (1, 22, 22) and big["vis"].shape == (3, 22, 22)
    whole = data.PairedDataset(folder)[0]["ir"][0]
    padded = torch.nn.functional.pad(whole[None, None], (0, 0, 2, 2), mode="reflect")[0, 0]
    assert any(torch.equal(big["ir"][0], padded[t:t + 22, s:s + 22]) for t in range(3) for s in range(3))


def test_decoded_images_are_cached_reread_when_the_file_changes_and_bounded(split, monkeypatch):
    cache = data._DecodedImages()
    path = split / "vi" / "a.png"
    first = cache.read(path, "RGB")
    assert cache.read(path, "RGB") is first and not first.flags.writeable  # a hit, shared read-only
    with pytest.raises(ValueError):
        first[0, 0, 0] = 1
    new = np.full((20, 24, 3), 7, np.uint8)
    io.write_image(path, new)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))  # a later mtime, even on coarse clocks
    np.testing.assert_array_equal(cache.read(path, "RGB"), new)  # the rewritten file, not the cached array
    monkeypatch.setenv("FUSIONLIB_IMAGE_CACHE_MB", str(2 * 20 * 24 * 3 / 2 ** 20))  # room for two RGB images
    for name in ("a.png", "b.png", "c.png"):
        cache.read(split / "vi" / name, "RGB")
    assert len(cache._items) == 2 and cache._bytes == 2 * 20 * 24 * 3  # the least recently used one left
    monkeypatch.setenv("FUSIONLIB_IMAGE_CACHE_MB", "0")
    assert cache.read(path, "RGB").flags.writeable  # off: a fresh decode each time
    monkeypatch.setenv("FUSIONLIB_IMAGE_CACHE_MB", "lots")
    with pytest.raises(ValueError, match="FUSIONLIB_IMAGE_CACHE_MB must be a number of MiB.*'lots'"):
        cache.read(path, "RGB")
