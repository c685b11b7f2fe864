"""Dataset-level evaluation: every pair of a split, a per-image table and a mean ± std summary.

Used by every paper notebook's tables (``notebooks/01_fusion_metrics.ipynb`` introduces it).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
import torch
from tqdm.auto import tqdm

from fusionlib.data import Sample, evenly_spaced, file_checksum, find_pairs, split_dir
from fusionlib.io import SUPPORTED_SUFFIXES, read_image, to_tensor, write_image
from fusionlib.metrics import evaluate
from fusionlib.paths import cache_root

__all__ = ["evaluate_dataset", "summarise", "centre_crop", "cropped", "resized", "score"]

Fuser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _fused_file(folder: Path, name: str) -> Path:
    """The fused image for a source named ``name``: same file name, or same stem with any supported suffix."""
    exact = folder / name
    if exact.is_file():
        return exact
    stem = Path(name).stem
    for suffix in SUPPORTED_SUFFIXES:
        if (folder / (stem + suffix)).is_file():
            return folder / (stem + suffix)
    raise FileNotFoundError(f"no fused image for {name} in {folder} (looked for {stem}.png/.jpg/...)")


def _score(sample: Sample, vis_key: str, fused_dir: str | None, fuser: Fuser | None, metrics, convention: str,
           kwargs: dict, input_key: str | None = None) -> dict:
    try:
        return _score_one(sample, vis_key, fused_dir, fuser, metrics, convention, kwargs, input_key)
    except (FileNotFoundError, ValueError, RuntimeError) as e:  # every failure names the image it happened on
        # re-raise as the plain base class: subclasses (UnicodeDecodeError, ...) take other constructor arguments
        base = next(c for c in (FileNotFoundError, ValueError, RuntimeError) if isinstance(e, c))
        raise base(f"evaluating {sample.name}: {e}") from e


def _score_one(sample: Sample, vis_key: str, fused_dir: str | None, fuser: Fuser | None, metrics, convention: str,
               kwargs: dict, input_key: str | None = None) -> dict:
    ir = read_image(sample.paths["ir"], "L")
    vis = read_image(sample.paths[vis_key], "RGB")
    if fuser is not None:
        given = vis if input_key in (None, vis_key) else read_image(sample.paths[input_key], "RGB")
        with torch.no_grad():
            fused = fuser(to_tensor(ir), to_tensor(given))
        if fused.ndim != 4 or fused.shape[0] != 1:
            raise ValueError(f"the fuser returned shape {tuple(fused.shape)} for {sample.name}; expected (1, C, H, W)")
        lo, hi = float(fused.min()), float(fused.max())
        if lo < -1e-3 or hi > 1 + 1e-3:  # a 0-255 output clamped to [0, 1] would score as a white image
            name = getattr(fuser, "__name__", type(fuser).__name__)
            raise ValueError(f"fuser {name} returned values in [{lo:.4g}, {hi:.4g}] for {sample.name}; fusers return [0, 1]")
        fused = fused.clamp(0, 1)  # float rounding only
    else:
        fused = read_image(_fused_file(Path(fused_dir), sample.name))
    return {"image": sample.name, **evaluate(ir, vis, fused, metrics, convention, image=sample.name, **kwargs)}


def _worker_init():
    torch.set_num_threads(1)  # processes, not threads, give the parallelism


def evaluate_dataset(pairs: str | Path | Sequence[Sample], fused: str | Path | Fuser,
                     metrics: Iterable[str] | None = None, convention: str = "vifb", *,
                     reference: str = "vi", fuser_input: str | None = None, workers: int = 0, progress: bool = True,
                     **kwargs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a fusion method on every pair of a split.

    Args:
        pairs: a split folder (``<root>/<dataset>/<split>``) or samples from :func:`fusionlib.data.find_pairs`.
        fused: a folder of fused images named like the sources, or a fuser
            ``f(ir (1, 1, H, W), vis (1, 3, H, W)) -> fused (1, C, H, W)`` (float in [0, 1]).
        metrics, convention, kwargs: as in :func:`fusionlib.metrics.evaluate`.
        reference: the visible modality used as the VIS source: ``"vi"``, or ``"vi_clear"`` to score
            against the clean image of a hazy set (IASSF's protocol).
        fuser_input: the visible modality handed to the fuser, if not ``reference`` (hazy sets:
            ``"vi_hazy"`` in, scored against ``"vi_clear"``).
        workers: > 0 scores images in that many processes (folders of fused images, or picklable
            fusers); 0 runs in this process.
        progress: show a tqdm bar (``TQDM_DISABLE=1`` silences it too).

    Returns:
        ``(per_image, summary)``: one row per image (column ``image``, then the metrics) and a
        table with ``mean`` and ``std`` (population) of each metric.
    """
    samples = find_pairs(pairs) if isinstance(pairs, (str, Path)) else list(pairs)
    if not samples:
        raise ValueError("evaluate_dataset got no samples")
    if reference not in samples[0].paths:
        raise ValueError(f"reference {reference!r} is not a modality of these samples ({', '.join(samples[0].paths)})")
    fuser = fused if callable(fused) else None
    fused_dir = None if fuser else str(fused)
    if fused_dir is not None and not Path(fused_dir).is_dir():
        raise FileNotFoundError(f"fused-image folder not found: {fused_dir}")
    metrics = ([metrics] if isinstance(metrics, str) else list(metrics)) if metrics is not None else None
    if fuser_input is not None and fuser_input not in samples[0].paths:
        raise ValueError(f"fuser_input {fuser_input!r} is not a modality of these samples ({', '.join(samples[0].paths)})")
    args = [(s, reference, fused_dir, fuser, metrics, convention, kwargs, fuser_input) for s in samples]
    bar = dict(total=len(samples), desc="evaluate", disable=not progress or os.environ.get("TQDM_DISABLE") == "1")
    if workers > 0:
        with ProcessPoolExecutor(workers, initializer=_worker_init) as pool:
            rows = list(tqdm(pool.map(_score, *zip(*args)), **bar))
    else:
        rows = [_score(*a) for a in tqdm(args, **bar)]
    per_image = pd.DataFrame(rows)
    return per_image, summarise(per_image)


def summarise(per_image: pd.DataFrame) -> pd.DataFrame:
    """Mean and population std of every numeric column over the images where it is defined, and
    ``n``, that number of images: a metric undefined on some image (NaN) is averaged over fewer
    images, and the table says so. A warning names the metric and the images."""
    values = per_image.drop(columns=[c for c in ("image",) if c in per_image])
    counts = values.notna().sum()
    if (counts < len(values)).any() and "image" in per_image:
        for metric in counts.index[counts < len(values)]:
            missing = list(per_image.loc[values[metric].isna(), "image"])
            warnings.warn(f"{metric} is undefined (NaN) on {len(missing)} of {len(values)} images: "
                          f"{', '.join(map(str, missing[:5]))}{' …' if len(missing) > 5 else ''}; its mean uses the other {int(counts[metric])}",
                          stacklevel=2)
    return pd.DataFrame({"mean": values.mean(), "std": values.std(ddof=0), "n": counts})


def summary_row(summary: pd.DataFrame, images: int) -> dict:
    """One table row from :func:`summarise`: ``images``, each metric's mean, and "M (n)" for every
    metric undefined on some of the images (so a mean over fewer images says so)."""
    short = summary.index[summary["n"] < images]
    return {"images": images, **summary["mean"].to_dict(), **{f"{m} (n)": int(summary.loc[m, "n"]) for m in short}}


def _transformed(samples: list[Sample], folder: Path, transform: Callable) -> list[Sample]:
    """Every image of the pairs passed through ``transform`` (H×W[×C] array → array), written once as
    PNG under ``folder/<modality>/`` and re-used on later calls. The cached file is named by the
    source's content (``<stem>.<sha256[:12]>.png``), so a changed source is never served stale."""
    out = []
    for s in samples:
        paths = {}
        for modality, path in s.paths.items():
            target = folder / modality / f"{Path(path).stem}.{file_checksum(path)[:12]}.png"
            if not target.is_file():
                write_image(target, transform(read_image(path)))
            paths[modality] = target
        out.append(Sample(Path(s.name).stem + ".png", paths))
    return out


def centre_crop(img, size: int):
    """The centre ``size``×``size`` window of an ``H×W(×C)`` array (a side shorter than ``size`` is kept whole)."""
    top, left = max(0, (img.shape[0] - size) // 2), max(0, (img.shape[1] - size) // 2)
    return img[top:top + size, left:left + size]


def cropped(samples: list[Sample], size: int, tag: str) -> list[Sample]:
    """Centre ``size``×``size`` crops of the pairs (:func:`centre_crop`), written once under
    ``<cache>/crops/<tag>/<size>/`` (quick CPU profiles evaluate on crops; 0 keeps the samples as they are)."""
    if not size:
        return samples
    return _transformed(samples, cache_root() / "crops" / tag / str(size), lambda img: centre_crop(img, size))


def resized(samples: list[Sample], short_side: int, tag: str) -> list[Sample]:
    """The pairs resized (bilinear, both modalities) so that their short side is ``short_side``,
    written once under ``<cache>/resized/<tag>/<short_side>/`` (LDFusion evaluates RoadScene at a
    short side of 768; 0 keeps the samples as they are)."""
    if not short_side:
        return samples
    import cv2

    def resize(img):
        h, w = img.shape[:2]
        scale = short_side / min(h, w)
        return cv2.resize(img, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_LINEAR)
    return _transformed(samples, cache_root() / "resized" / tag / str(short_side), resize)


def score(fusers: dict[str, Callable], datasets: list[str | tuple[str, Path]], n_images: int, metrics: list[str],
          convention: str = "lrrnet", split: str = "test", crop: int = 0, *, reference: str = "vi",
          fuser_input: str | None = None, per_image: bool = False) -> pd.DataFrame:
    """Mean of each metric per (dataset, method) on ``n_images`` evenly spaced pairs (0 = all),
    optionally on centre crops (:func:`cropped`). A dataset is a name under the data root (its
    ``split`` folder; skipped when absent), a ``(name, folder)`` pair, or a ``(name, samples)`` pair
    of pairs already chosen and prepared (used as they are: no selection, no crop). ``reference`` and
    ``fuser_input`` as in :func:`evaluate_dataset`; ``per_image=True`` returns one row per image
    (for distributions, e.g. violin plots) instead of the means."""
    rows = []
    for dataset in datasets:
        dataset, where = dataset if isinstance(dataset, tuple) else (dataset, split_dir(dataset, split))
        if isinstance(where, (list, tuple)):
            samples = list(where)
        elif Path(where).is_dir():
            samples = cropped(evenly_spaced(find_pairs(where), n_images), crop, f"{dataset}_{split}")
        else:
            continue
        for name, fuser in fusers.items():
            table, summary = evaluate_dataset(samples, fuser, metrics, convention, reference=reference,
                                              fuser_input=fuser_input, progress=False)
            if per_image:
                rows += [{"dataset": dataset, "method": name, **r} for r in table.to_dict("records")]
            else:
                rows.append({"dataset": dataset, "method": name, **summary_row(summary, len(samples))})
    return pd.DataFrame(rows)
