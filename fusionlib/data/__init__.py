"""Datasets: the on-disk layout, pairing with validation, and a PyTorch ``Dataset``.

Layout (``notebooks/00_data_and_conventions.ipynb``, "Reading the datasets")::

    <root>/<dataset>/<split>/ir/NAME          infrared, any channel count (read as one channel)
    <root>/<dataset>/<split>/vi/NAME          visible, read as RGB
    <root>/<dataset>/<split>/vi_hazy/NAME     hazy sets: hazy visible input ...
    <root>/<dataset>/<split>/vi_clear/NAME    ... and its clean ground truth

``<root>`` is ``$FUSIONLIB_DATA`` or ``<project>/data`` (:func:`fusionlib.paths.data_root`).
Partners share the same file name. Sub-modules: :mod:`.synthetic` (procedural scenes, so that
everything runs with no downloaded data) and :mod:`.haze` (atmospheric scattering, dark channel).
"""

from __future__ import annotations

import hashlib
import numbers
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from fusionlib.io import SUPPORTED_SUFFIXES, read_image, to_tensor
from fusionlib.paths import data_root

__all__ = ["MODALITIES", "HAZY_MODALITIES", "KEYS", "Sample", "PairingError", "split_dir",
           "list_datasets", "find_pairs", "evenly_spaced", "file_checksum", "checksum_samples", "PairedDataset"]

MODALITIES = ("ir", "vi")
HAZY_MODALITIES = ("ir", "vi_hazy", "vi_clear")
# Folder name -> key in the samples PairedDataset returns (house vocabulary: ir, vis).
KEYS = {"ir": "ir", "vi": "vis", "vi_hazy": "vis_hazy", "vi_clear": "vis_clear"}


class PairingError(ValueError):
    """A dataset folder whose files do not pair up (missing partner, size mismatch, unreadable)."""


@dataclass(frozen=True)
class Sample:
    """One scene: its file name and the path of each modality's file."""
    name: str
    paths: dict[str, Path] = field(hash=False)


def split_dir(dataset: str, split: str, root: str | Path | None = None) -> Path:
    """``<root>/<dataset>/<split>``; ``root`` defaults to :func:`fusionlib.paths.data_root`."""
    return Path(root) / dataset / split if root is not None else data_root() / dataset / split


def list_datasets(root: str | Path | None = None) -> list[tuple[str, str]]:
    """``(dataset, split)`` for every folder under ``root`` that follows the layout."""
    root = Path(root) if root is not None else data_root()
    found = []
    for split in sorted(root.glob("*/*")):
        hidden = split.parent.name.startswith(".") or split.name.startswith(".")  # .downloads, staging folders
        if not hidden and split.is_dir() and (split / "ir").is_dir():
            found.append((split.parent.name, split.name))
    return found


def _image_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir())
            if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES}


def _size(path: Path, deep: bool = False) -> tuple[int, int]:
    """(H, W) from the file header, without decoding the pixels; ``deep`` also checks every chunk's
    CRC (PNG) and decodes every pixel, so a truncated or corrupted file raises."""
    with Image.open(path) as im:
        size = im.size[1], im.size[0]
        if deep:
            im.verify()
    if deep:
        with Image.open(path) as im:
            im.load()
    return size


def evenly_spaced(items: Sequence, n: int) -> list:
    """``n`` items spread over the sequence (every ``len // n``-th from the first), or all of them
    when ``n`` is 0: the rule every table uses to pick its test images. A negative or non-integer
    ``n`` is an error (it used to drop items silently)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
        raise ValueError(f"evenly_spaced: n must be an integer ≥ 0 (0 for all), got {n!r}")
    items = list(items)
    return items[:: max(1, len(items) // n)][:n] if n else items


def find_pairs(folder: str | Path, modalities: Sequence[str] | None = None, *, check_sizes: bool = True,
               on_error: Literal["raise", "skip"] = "raise", deep: bool = False) -> list[Sample]:
    """Pair the files of a split folder by file name and validate them.

    Args:
        folder: ``<root>/<dataset>/<split>``.
        modalities: sub-folders to pair; default ``("ir", "vi")``, or ``HAZY_MODALITIES`` when the
            folder has ``vi_hazy/``.
        check_sizes: compare image sizes across modalities (reads headers only).
        deep: decode every image fully (with a progress bar), so that truncated or corrupted files
            are found too (``python -m data_prep verify`` does); slow on a full dataset.
        on_error: ``"raise"`` a :class:`PairingError` listing every problem, or ``"skip"`` the bad
            names with one warning.

    Returns:
        Samples sorted by name.
    """
    folder = Path(folder)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {folder} (expected <root>/<dataset>/<split>/"
                                "{ir,vi}; set FUSIONLIB_DATA or see data_prep/README.md)")
    if modalities is None:
        modalities = HAZY_MODALITIES if (folder / "vi_hazy").is_dir() else MODALITIES
    missing_dirs = [m for m in modalities if not (folder / m).is_dir()]
    if missing_dirs:
        raise FileNotFoundError(f"{folder} lacks the sub-folder(s) {', '.join(missing_dirs)}/ "
                                f"(expected {', '.join(m + '/' for m in modalities)})")
    files = {m: _image_files(folder / m) for m in modalities}
    names = sorted(set().union(*files.values()))
    problems: dict[str, str] = {}
    bar = tqdm(total=sum(map(len, files.values())), desc=f"decode {folder.name}", unit="img", leave=False,
               disable=not deep)
    for name in names:
        absent = [m for m in modalities if name not in files[m]]
        if absent:
            problems[name] = f"no partner in {', '.join(a + '/' for a in absent)}"
            continue
        if check_sizes or deep:
            sizes = {}
            for m in modalities:
                try:
                    sizes[m] = _size(files[m][name], deep)
                    bar.update()
                except Exception as exc:  # PIL raises several types for broken files
                    detail = str(exc).splitlines()[0][:80] if str(exc) else ""
                    problems[name] = f"unreadable {m}/{name} ({type(exc).__name__}{': ' + detail if detail else ''})"
                    break
            else:
                if len(set(sizes.values())) > 1:
                    problems[name] = "sizes differ: " + ", ".join(
                        f"{m} {h}×{w}" for m, (h, w) in sizes.items())
    bar.close()
    if problems:
        listing = "\n".join(f"  - {n}: {why}" for n, why in list(problems.items())[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        msg = f"{len(problems)} of {len(names)} names in {folder} do not pair up:\n{listing}{more}"
        if on_error == "raise":
            raise PairingError(msg)
        warnings.warn(msg + "\n(skipped)", stacklevel=2)
    samples = [Sample(n, {m: files[m][n] for m in modalities}) for n in names if n not in problems]
    if not samples:
        raise PairingError(f"no usable pairs in {folder}")
    return samples


def file_checksum(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksum_samples(samples: Iterable[Sample]) -> str:
    """One sha256 for a set of samples: over sorted ``modality/name<TAB>sha256(file)`` lines.

    This is the "data checksum" of a report's provenance.
    """
    lines = sorted(f"{m}/{s.name}\t{file_checksum(p)}" for s in samples for m, p in s.paths.items())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class _DecodedImages:
    """The decoded arrays of recently read image files, least recently used dropped first beyond
    ``$FUSIONLIB_IMAGE_CACHE_MB`` (default 256; 0 turns it off), per process (each DataLoader worker
    has its own). Keyed by path, mode, size and modification time: a rewritten file is read again.
    A training run reads the same few files every epoch, and a PNG decode costs more than a small
    crop's forward pass (notebook 41's smoke run spent 3.6 s of 46 decoding)."""

    def __init__(self):
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def budget() -> int:
        raw = os.environ.get("FUSIONLIB_IMAGE_CACHE_MB", "256")
        try:
            mb = float(raw)
        except ValueError:
            raise ValueError(f"FUSIONLIB_IMAGE_CACHE_MB must be a number of MiB (0 turns the cache off), got {raw!r}") from None
        return int(max(mb, 0) * 2 ** 20)

    def read(self, path: Path, mode: str) -> np.ndarray:
        budget = self.budget()
        if budget == 0:
            return read_image(path, mode)
        stat = os.stat(path)
        key = (str(path), mode, stat.st_size, stat.st_mtime_ns)
        arr = self._items.get(key)
        if arr is not None:
            self._items.move_to_end(key)
            return arr
        arr = read_image(path, mode)
        arr.setflags(write=False)  # shared by every later read: nobody may change it in place
        self._items[key] = arr
        self._bytes += arr.nbytes
        while self._bytes > budget and self._items:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return arr


_DECODED = _DecodedImages()


class PairedDataset(torch.utils.data.Dataset):
    """Paired IR–VIS (or IR + hazy/clear VIS) images as float tensors in [0, 1].

    Each item is a dict: ``name``, ``ir`` ``(1, H, W)`` and ``vis`` ``(3, H, W)`` RGB (hazy sets:
    ``vis_hazy`` and ``vis_clear`` instead of ``vis``). 16-bit files are scaled by 1/65535.

    Training: ``crop`` (int or (h, w)) takes the same random window from every modality and
    ``flip`` flips them together (horizontal and vertical, each with p = 1/2), ``rot90`` rotates them
    by k·90°, k uniform in 0–3 (square crops only, so a batch keeps one shape). Randomness comes
    from ``numpy.random.default_rng([seed, epoch, index])``, so crops do not depend on DataLoader
    workers; call :meth:`set_epoch` to draw new ones. Evaluation (``crop=None``): whole images of
    any size (use ``batch_size=1`` when sizes vary). ``repeat``: every pair listed that many times per
    epoch, each listing with its own crop (LDFusion's code lists each pair 10 times, so its epoch, and
    the warm-up measured in epochs, is 10 passes long). ``pad``: an image smaller than the crop is
    first reflected by the difference on each side, as torchvision's ``RandomCrop(pad_if_needed=True,
    padding_mode="reflect")`` in LDFusion's loader (RoadScene has pairs 178 px high); otherwise it is an error.

    Args:
        dataset: a dataset name under ``root`` (with ``split``), or the path of a split folder.
        split: the split folder name.
        root: data root; default :func:`fusionlib.paths.data_root`.
        modalities, on_error: as in :func:`find_pairs`.
    """

    def __init__(self, dataset: str | Path, split: str = "test", *, root: str | Path | None = None,
                 modalities: Sequence[str] | None = None, crop: int | tuple[int, int] | None = None,
                 flip: bool = False, rot90: bool = False, seed: int = 0,
                 on_error: Literal["raise", "skip"] = "raise", repeat: int = 1, pad: bool = False):
        folder = Path(dataset)
        if not folder.is_dir():
            folder = split_dir(str(dataset), split, root)
        self.folder = folder
        self.samples = find_pairs(folder, modalities, on_error=on_error)
        self.crop = (crop, crop) if isinstance(crop, int) else crop
        if self.crop is not None and min(self.crop) <= 0:
            raise ValueError(f"crop must be positive, got {crop}")
        if rot90 and (self.crop is None or self.crop[0] != self.crop[1]):
            raise ValueError(f"rot90 needs a square crop (a batch keeps one shape), got crop={crop}")
        self.flip, self.rot90 = flip, rot90
        if repeat < 1:
            raise ValueError(f"repeat must be ≥ 1, got {repeat}")
        self.seed, self.repeat, self.pad = seed, int(repeat), pad
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples) * self.repeat

    def set_epoch(self, epoch: int) -> None:
        """Select the random crops/flips of this epoch (deterministic given ``seed``)."""
        self.epoch = int(epoch)

    def checksum(self) -> str:
        """The data checksum of this dataset (:func:`checksum_samples`)."""
        return checksum_samples(self.samples)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        index %= len(self)
        sample = self.samples[index % len(self.samples)]
        item: dict = {"name": sample.name}
        for m, path in sample.paths.items():
            arr = _DECODED.read(path, "L" if m == "ir" else "RGB")
            item[KEYS.get(m, m)] = to_tensor(arr)[0]
        if self.crop is None and not self.flip:
            return item
        rng = np.random.default_rng([self.seed, self.epoch, index])
        h, w = item["ir"].shape[-2:]
        if self.crop is not None and self.pad and (self.crop[0] > h or self.crop[1] > w):
            dh, dw = max(0, self.crop[0] - h), max(0, self.crop[1] - w)
            item = {k: v if k == "name" else torch.nn.functional.pad(v[None], (dw, dw, dh, dh), mode="reflect")[0]
                    for k, v in item.items()}
            h, w = item["ir"].shape[-2:]
        if self.crop is not None:
            ch, cw = self.crop
            if ch > h or cw > w:
                raise ValueError(f"crop {ch}×{cw} is larger than {sample.name} ({h}×{w}) in {self.folder}")
            top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        flips = [d for d, p in zip((-1, -2), rng.random(2), strict=True) if self.flip and p < 0.5]
        turns = int(rng.integers(0, 4)) if self.rot90 else 0  # drawn last: sets without rot90 keep their crops
        for key, t in item.items():
            if key == "name":
                continue
            if self.crop is not None:
                t = t[:, top:top + ch, left:left + cw]
            if flips:
                t = torch.flip(t, flips)
            if turns:
                t = torch.rot90(t, turns, dims=(-2, -1))
            item[key] = t.contiguous()
        return item
