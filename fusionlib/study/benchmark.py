"""One benchmark for every method we can run, on identical data and metrics, with statistics.

Driven by ``notebooks/91_benchmark.ipynb``; read by ``notebooks/92_report.ipynb``.

- :func:`evaluation_sets` picks the test images (the same for every method); :func:`methods` collects
  what can run here: the classical baselines, the visible image itself as a reference, LRRNet
  (released and retrained weights), the four papers' checkpoints from the manifest (committed, in
  ``checkpoints/large/`` or ``$FUSIONLIB_WEIGHTS/trained/``; a missing one is listed with the command
  that regenerates it), dark-channel dehazing + fusion for the hazy set, and the authors' released
  outputs where the data holds them.
- :func:`fuse_all` runs each method once per image and caches its float output, so that every
  scoring below sees the very same pixels; :func:`score_all` scores them under every convention of
  :data:`fusionlib.metrics.CONVENTIONS` and, for the conformance matrix, under two variants of the
  canonical one: the luminance Y instead of grey, and the float output instead of its 8-bit file.
- Statistics come from scipy (bootstrap, Wilcoxon, Friedman, Kendall's τ) and statsmodels (Holm):
  :func:`summary` (mean ± std, 95 % bootstrap confidence interval), :func:`pairwise` (paired
  Wilcoxon signed-rank tests, Holm-corrected per set and metric), :func:`rank_stability` (ranks
  under bootstrap resampling of the images), :func:`mean_ranks` (per-image ranks and Friedman's
  test) and :func:`conformance` (how far scorings disagree and where the ranking of methods flips).
- :func:`complexity` measures parameters, FLOPs and latency of every method on one device.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from fusionlib import checkpoints
from fusionlib.study.verdicts import paired_p
from fusionlib.common import baselines as bl
from fusionlib.common import lrrnet
from fusionlib.common.complexity import count_flops, count_parameters
from fusionlib.common.rgb import fuse_rgb
from fusionlib.data import Sample, evenly_spaced, file_checksum, find_pairs, split_dir
from fusionlib.data.synthetic import materialize
from fusionlib.io import read_image, rgb_to_ycbcr_jpeg, to_tensor
from fusionlib.metrics import CONVENTIONS, METRICS, evaluate, higher_is_better
from fusionlib.metrics.dataset import cropped
from fusionlib.paths import cache_root, data_root, weights_root
from fusionlib.study import registry

__all__ = ["SETS", "SCORINGS", "METRIC_NAMES", "MIN_PAIRED", "Method", "smallest_holm_p", "evaluation_sets", "methods",
           "fuse_all", "score_all", "summary", "bootstrap_ci", "pairwise", "wins", "relabel", "variant_labels", "mean_ranks",
           "rank_cliques", "rank_stability", "rank_table", "conformance", "complexity"]

# name -> (dataset folder, split, hazy): the evaluation sets, in the order tables list them
SETS = {"MSRS": ("msrs", "test", False), "TNO": ("tno", "test", False), "RoadScene": ("roadscene", "test", False),
        "M3FD": ("m3fd", "test", False), "hazy MSRS": ("msrs_hazy", "test", True),
        "LDFusion demos": ("ldfusion_demo", "test", False)}
METRIC_NAMES = [m for m in METRICS if m != "PI"]  # PI needs Ma et al.'s learned model (not available offline)
# every convention of fusionlib.metrics, then two variants of the canonical one (the conformance matrix)
SCORINGS = (*CONVENTIONS, "canonical, Y", "canonical, float")
MIN_PAIRED = 10  # sets with fewer images get no paired tests (the floor; Wilcoxon needs ≥ 6 anyway)
_CACHE_VERSION = "1"  # bump when the fused-output format changes


@dataclass
class Method:
    """A method of the benchmark: a fuser ``(ir (1,1,H,W), vis RGB (1,3,H,W)) -> RGB`` in [0, 1], or
    a folder of released outputs named like the sources."""
    name: str
    family: str                      # classical, reference, LRRNet, LRCFuse, DCMIF, IASSF, LDFusion, two-stage
    fuser: Callable | None = None
    inputs: str = "IR + VIS"
    weights: str = "none"            # checkpoint name and steps, "released", "none"
    key: str = ""                    # cache identity: changes when the weights do
    module: torch.nn.Module | None = None
    sets: str = "clear"              # "clear", "hazy", "both", or one set's name
    folder: Path | None = None
    note: str = ""
    clear_input: bool = False        # on a hazy set, give the clear visible image (a control for the haze)

    def runs_on(self, set_name: str, hazy: bool) -> bool:
        return self.sets == set_name or self.sets == "both" or self.sets == ("hazy" if hazy else "clear")


def evaluation_sets(names: list[str], n_images: int, crop: int = 0, *, synthetic_n: int = 3,
                    ) -> tuple[dict[str, list[Sample]], dict[str, bool], list[str]]:
    """The images every method is scored on: ``n_images`` evenly spaced pairs of each set (0 = all),
    centre-cropped to ``crop`` (0 = whole images).

    Returns ``(samples by set, hazy by set, notes)``; a set whose folder is absent is skipped with a
    note. Without any real set, two synthetic sets (clear and hazy, ``synthetic_n`` scenes each) keep
    the notebook runnable, and a note says so.
    """
    chosen, hazy, notes = {}, {}, []
    for name in names:
        if name not in SETS:
            raise ValueError(f"unknown evaluation set {name!r}: use one of {', '.join(SETS)}")
        dataset, split, is_hazy = SETS[name]
        folder = split_dir(dataset, split)
        if not folder.is_dir():
            notes.append(f"{name}: {folder} is absent (see data_prep/README.md)")
            continue
        chosen[name] = cropped(evenly_spaced(find_pairs(folder), n_images), crop, f"benchmark_{dataset}_{split}")
        hazy[name] = is_hazy
    if not chosen:
        notes.append(f"no real evaluation set under {data_root()}: {synthetic_n} synthetic scenes per set instead")
        for name, is_hazy in (("synthetic", False), ("synthetic hazy", True)):
            chosen[name] = cropped(find_pairs(materialize(n=synthetic_n, seed=91, hazy=is_hazy)), crop, f"benchmark_{name}")
            hazy[name] = is_hazy
    return chosen, hazy, notes


# (paper, variant) -> what a checkpoint's row is called when it is not the paper's full model
def variant_labels() -> dict[tuple[str, str], str]:
    """(paper, variant) -> the row name of a checkpoint that is not its paper's method itself (an ablation), from the doors."""
    return {(key, variant): m.label for key, door in registry.papers().items() for variant, m in door.methods.items() if m.label}


def relabel(df: pd.DataFrame, column: str = "method") -> pd.DataFrame:
    """Rename the rows an earlier run wrote as ``"<family> [<checkpoint>]"`` to what the checkpoint is
    (:func:`variant_labels`: an ablation is not its paper's method), so re-analysed artefacts
    name every model as a fresh run would."""
    renames = {}
    labels = variant_labels()
    for e in checkpoints.manifest().values():
        label = labels.get((e.paper, e.variant))
        if label:
            renames[f"{label.split()[0]} [{e.name}]"] = f"{label} [{e.name}]"  # the family alone, as runs before the labels wrote it
    out = df.copy()
    for col in [c for c in (column, "A", "B", "winner") if c in out.columns]:
        out[col] = out[col].map(lambda v: next((v.replace(a, b, 1) for a, b in renames.items() if str(v).startswith(a)), v)
                                if isinstance(v, str) else v)
    return out


def _visible_only(ir: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    return vis


def methods(device: str = "cpu") -> tuple[list[Method], pd.DataFrame]:
    """Every method that can run here, and a table of those that cannot (``method, why, how``)."""
    out, missing = [], []
    for name, fn in bl.BASELINES.items():
        out.append(Method(name, "classical", fuse_rgb(fn), key=f"classical:{name}", note="fusionlib.common.baselines"))
        out.append(Method(f"DCP + {name}", "two-stage", bl.dehaze_first(fuse_rgb(fn)), inputs="hazy VIS + IR",
                          key=f"dcp:{name}", sets="hazy", note="dark-channel dehazing, then the classical fuser"))
    out.append(Method("VIS (no fusion)", "reference", _visible_only, inputs="VIS", key="visible",
                      note="the visible image itself: what a fusion method must beat"))
    learned = []  # (name, family, module, rgb fuser, inputs, sets, weights, key, note, its registry.CheckpointSpec)
    official = weights_root() / lrrnet.OFFICIAL_CHECKPOINT
    if official.is_file():
        net = lrrnet.load_official(map_location=device)
        learned.append(("LRRNet (released)", "LRRNet", net, lrrnet.rgb_fuser(net, device), "IR + VIS", "clear",
                        "released", f"released:{file_checksum(official)}", f"the authors' checkpoint {official.name}",
                        registry.CheckpointSpec("LRRNet", lrrnet.LRRNet, lrrnet.rgb_fuser, "IR + VIS", dehaze_first=True)))
    else:
        missing.append({"method": "LRRNet (released)", "why": f"{official} is absent",
                        "how": "place the authors' checkpoint there (weights/README.md)"})
    doors = registry.papers()
    for entry in checkpoints.manifest().values():
        spec = doors[entry.paper].methods.get(entry.variant) if entry.paper in doors else None
        if spec is None:
            continue
        name = f"{spec.label or spec.family} [{entry.name}]"
        try:
            model = spec.build(**entry.model_kwargs())
            checkpoints.load_into(model, entry.name)
        except checkpoints.CheckpointError as e:
            missing.append({"method": name, "why": str(e).split(";")[0], "how": f"`{entry.command}`"})
            continue
        model = model.to(device).eval()
        learned.append((name, spec.family, model, spec.fuser(model, device), spec.inputs, spec.sets,
                        f"{entry.name} ({entry.steps} steps, {entry.profile} profile)", f"checkpoint:{entry.sha256}",
                        checkpoints.describe(entry), spec))
    for name, family, module, fuser, inputs, sets, weights, key, note, spec in learned:
        out.append(Method(name, family, fuser, inputs, weights, key, module, sets, note=note))
        if spec.clear_input_control:  # the same model on the clear image of each hazy scene: what the haze costs it
            out.append(Method(f"{name} (clear VIS in)", family, fuser, "clear VIS of the hazy set", weights, key, module,
                              "hazy", note="control: the hazy set's clear visible image in, scored like the others", clear_input=True))
        if sets == "clear" and spec.dehaze_first:
            out.append(Method(f"DCP + {name}", "two-stage", bl.dehaze_first(fuser), "hazy VIS + IR", weights,
                              f"dcp:{key}", module, "hazy", note="dark-channel dehazing, then the learned fuser"))
    for door in registry.papers().values():
        for r in door.released_outputs:
            folder = data_root() / r.folder
            if folder.is_dir():
                out.append(Method(r.name, door.chapter, None, r.inputs, r.weights, f"folder:{folder}", sets=r.sets,
                                  folder=folder, note=r.note))
    return out, pd.DataFrame(missing, columns=["method", "why", "how"])


# ------------------------------------------------------------------ fusing once

def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _crop_like(img: np.ndarray, h: int, w: int) -> np.ndarray:
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top:top + h, left:left + w]


def fuse_all(methods_: list[Method], sets: dict[str, list[Sample]], hazy: dict[str, bool], *,
             cache: Path | None = None, progress: bool = True) -> pd.DataFrame:
    """Fuse every image of every set with every method that runs on it, once: the float output is
    cached as ``<cache>/<method>/<image>.<key>.npy`` (float16 H×W×C in [0, 1]), keyed by the
    method's weights and the sources' checksums, and re-used on later calls.

    Returns one row per fused image: ``set, method, image, ir, vis, fused, seconds`` (``vis`` is the
    reference the metrics use: the clear image of a hazy set; ``seconds`` is NaN when cached).
    """
    cache = Path(cache or cache_root() / "benchmark")
    jobs = [(s, m, sample) for s, samples in sets.items() for m in methods_ if m.runs_on(s, hazy[s]) for sample in samples]
    rows = []
    bar = tqdm(jobs, desc="fuse", disable=not progress or os.environ.get("TQDM_DISABLE") == "1")
    for set_name, m, sample in bar:
        given = sample.paths["vi"] if not hazy[set_name] else sample.paths["vi_clear" if m.clear_input else "vi_hazy"]
        reference = sample.paths["vi_clear"] if hazy[set_name] else sample.paths["vi"]
        key = hashlib.sha256("|".join([_CACHE_VERSION, m.key, file_checksum(sample.paths["ir"]),
                                       file_checksum(given)]).encode()).hexdigest()[:16]
        target = cache / _slug(m.name) / f"{Path(sample.name).stem}.{key}.npy"
        seconds = math.nan
        if not target.is_file():
            bar.set_postfix_str(f"{set_name} / {m.name} / {sample.name}")
            ir = read_image(sample.paths["ir"], "L")
            if m.folder is not None:
                found = sorted(m.folder.glob(Path(sample.name).stem + ".*"))
                if not found:
                    raise FileNotFoundError(f"{m.name}: no released output for {sample.name} in {m.folder}")
                out = _crop_like(read_image(found[0], "RGB"), *ir.shape).astype(np.float32) / 255
            else:
                vis = to_tensor(read_image(given, "RGB"))
                t0 = time.perf_counter()
                with torch.no_grad():
                    fused = m.fuser(to_tensor(ir), vis)
                seconds = time.perf_counter() - t0
                if fused.ndim != 4 or fused.shape[0] != 1 or fused.shape[-2:] != vis.shape[-2:]:
                    raise ValueError(f"{m.name} returned shape {tuple(fused.shape)} for {sample.name} "
                                     f"({set_name}); expected (1, C, {vis.shape[-2]}, {vis.shape[-1]})")
                out = fused[0].permute(1, 2, 0).clamp(0, 1).float().cpu().numpy()
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp.npy")
            np.save(tmp, out.astype(np.float16))
            os.replace(tmp, target)
        rows.append({"set": set_name, "method": m.name, "image": sample.name, "ir": str(sample.paths["ir"]),
                     "vis": str(reference), "fused": str(target), "seconds": seconds})
    return pd.DataFrame(rows, columns=["set", "method", "image", "ir", "vis", "fused", "seconds"])


# ------------------------------------------------------------------ scoring under every convention

def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """(1, 3, H, W) or (1, 1, H, W) in [0, 1] -> its JPEG/BT.601 full-range Y (1, 1, H, W)."""
    return rgb if rgb.shape[1] == 1 else rgb_to_ycbcr_jpeg(rgb)[:, :1].clamp(0, 1)


def _score_task(task: tuple) -> list[dict]:
    set_name, method, image, ir_path, vis_path, fused_path, scorings, metrics = task
    ir, vis = read_image(ir_path, "L"), read_image(vis_path, "RGB")
    fused = torch.from_numpy(np.load(fused_path).astype(np.float32)).permute(2, 0, 1)[None].clamp(0, 1)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN metrics (a constant output) stay NaN in the table
        for scoring in scorings:
            if scoring == "canonical, Y":
                saved = torch.round(fused * 255) / 255  # the 8-bit file a toolbox would read, then its Y
                values = evaluate(to_tensor(ir), _luma(to_tensor(vis)), _luma(saved), metrics, "canonical")
            elif scoring == "canonical, float":
                values = evaluate(ir, vis, fused, metrics, "canonical", quantise=False)
            else:
                values = evaluate(ir, vis, fused, metrics, scoring)
            rows.append({"set": set_name, "scoring": scoring, "method": method, "image": image, **values})
    return rows


def _one_thread():
    torch.set_num_threads(1)


def score_all(fused: pd.DataFrame, scorings: tuple[str, ...] = SCORINGS, metrics: list[str] | None = None, *,
              workers: int = 0, progress: bool = True) -> pd.DataFrame:
    """Score every fused image of :func:`fuse_all` under each scoring (a convention name, or
    ``"canonical, Y"``: the luminance Y of the VIS and of the 8-bit fused image instead of their
    grey; ``"canonical, float"``: the float output, not rounded to 8 bits). One row per (set,
    scoring, method, image)."""
    metrics = list(metrics or METRIC_NAMES)
    unknown = [s for s in scorings if s not in SCORINGS]
    if unknown:
        raise ValueError(f"unknown scoring(s) {unknown}: use {', '.join(SCORINGS)}")
    tasks = [(r.set, r.method, r.image, r.ir, r.vis, r.fused, tuple(scorings), metrics) for r in fused.itertuples()]
    bar = dict(total=len(tasks), desc="score", disable=not progress or os.environ.get("TQDM_DISABLE") == "1")
    if workers > 0:
        with ProcessPoolExecutor(workers, initializer=_one_thread) as pool:
            parts = list(tqdm(pool.map(_score_task, tasks, chunksize=4), **bar))
    else:
        parts = [_score_task(t) for t in tqdm(tasks, **bar)]
    return pd.DataFrame([r for part in parts for r in part], columns=["set", "scoring", "method", "image", *metrics])


# ------------------------------------------------------------------ statistics

def bootstrap_ci(x, *, n_resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % BCa bootstrap interval of the mean (scipy.stats.bootstrap); the value itself for a
    constant sample, NaN for fewer than 2 values."""
    from scipy.stats import bootstrap
    x = np.asarray(x, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BCa's degenerate-sample warning: we fall back below
        res = bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=n_resamples, method="BCa",
                        rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        res = bootstrap((x,), np.mean, confidence_level=0.95, n_resamples=n_resamples, method="percentile",
                        rng=np.random.default_rng(seed))
        lo, hi = res.confidence_interval
    return float(lo), float(hi)


def summary(per_image: pd.DataFrame, metrics: list[str] | None = None, *, n_resamples: int = 2000,
            seed: int = 0) -> pd.DataFrame:
    """Per (set, scoring, method, metric): images ``n``, ``mean``, sample ``std`` (ddof = 1) and the
    95 % bootstrap confidence interval of the mean (``ci_low``, ``ci_high``)."""
    metrics = [m for m in (metrics or METRIC_NAMES) if m in per_image]
    rows = []
    for (s, sc, m), g in per_image.groupby(["set", "scoring", "method"], sort=False):
        for metric in metrics:
            x = g[metric].dropna().to_numpy(float)
            lo, hi = bootstrap_ci(x, n_resamples=n_resamples, seed=seed)
            rows.append({"set": s, "scoring": sc, "method": m, "metric": metric, "n": len(x),
                         "mean": float(x.mean()) if len(x) else math.nan,
                         "std": float(x.std(ddof=1)) if len(x) > 1 else math.nan, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def _wide(per_image: pd.DataFrame, set_name: str, scoring: str, metric: str) -> pd.DataFrame:
    """images × methods of one metric (methods in order of appearance)."""
    g = per_image[(per_image["set"] == set_name) & (per_image["scoring"] == scoring)]
    return g.pivot(index="image", columns="method", values=metric)[list(dict.fromkeys(g["method"]))]


def wins(pairs: pd.DataFrame, dead: dict[str, str] | None = None, scoring: str = "vifb") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Significant paired wins per method and set under ``scoring`` (rows: winner; columns: sets and
    ``total``), and the methods left out. A test involving a model that is not alive (``dead``:
    checkpoint -> why, :func:`fusionlib.study.health.dead_checkpoints`; the method's name carries
    ``[<checkpoint>]``) is not counted, for either side: a black image "wins" on artefact metrics
    such as Nabf, and beating it says nothing either."""
    dead = dead or {}

    def why(method: str) -> str:
        return next((f"{ck}: {w}" for ck, w in dead.items() if f"[{ck}]" in str(method)), "")
    p = pairs[pairs["scoring"] == scoring]
    out_methods = sorted({m for m in pd.concat([p["A"], p["B"]]) if why(m)})
    p = p[~p["A"].isin(out_methods) & ~p["B"].isin(out_methods)]
    won = p[p["outcome"].isin(["A better", "B better"])]
    won = won.assign(winner=np.where(won["outcome"] == "A better", won["A"], won["B"]))
    table = won.groupby(["set", "winner"]).size().unstack(0, fill_value=0)
    table["total"] = table.sum(axis=1)
    left_out = pd.DataFrame({"method": out_methods, "why not counted": [f"not alive ({why(m)})" for m in out_methods]},
                            columns=["method", "why not counted"])
    return table.sort_values("total", ascending=False), left_out


def smallest_holm_p(n: int, pairs: int) -> float:
    """The smallest Holm-adjusted p any of ``pairs`` two-sided exact Wilcoxon tests on ``n`` pairs can
    reach: every difference of one sign gives p = 2/2^n, and Holm multiplies the smallest p by the
    family's size. At or above ``alpha`` no outcome of the data can be called significant."""
    return min(1.0, pairs * 2.0 ** (1 - n))


def pairwise(per_image: pd.DataFrame, scoring: str, metrics: list[str] | None = None, *,
             min_images: int = MIN_PAIRED, alpha: float = 0.05) -> pd.DataFrame:
    """"Method A beats method B on metric m": for every set with at least ``min_images`` images and
    every metric, a two-sided paired Wilcoxon signed-rank test (scipy) of each pair of methods on the
    images both scored, Holm-corrected (statsmodels) over the pairs of that set and metric.

    Columns: ``set, metric, A, B, n, mean A − B, A better on, p, p_holm, outcome``; ``A better on``
    counts images where A is better in the metric's direction; ``outcome`` is "A better", "B better",
    "no significant difference" at ``alpha`` after correction, "cannot reject at this n" when even
    the most extreme result of ``n`` images (exact two-sided p = 2/2^n, times the family's size under
    Holm) could not reach ``alpha`` (no evidence either way, by construction), or "untestable" (all
    differences zero, or too few shared images).
    """
    from statsmodels.stats.multitest import multipletests
    metrics = [m for m in (metrics or METRIC_NAMES) if m in per_image]
    rows = []
    for set_name in dict.fromkeys(per_image.loc[per_image["scoring"] == scoring, "set"]):
        for metric in metrics:
            wide = _wide(per_image, set_name, scoring, metric)
            if len(wide) < min_images:
                continue
            sign = 1 if higher_is_better(metric) else -1
            family = []
            for a, b in itertools.combinations(wide.columns, 2):
                d = (wide[a] - wide[b]).dropna()
                p = paired_p(wide[a], wide[b]) if len(d) >= min_images else math.nan
                family.append({"set": set_name, "metric": metric, "A": a, "B": b, "n": len(d),
                               "mean A − B": float(d.mean()) if len(d) else math.nan,
                               "A better on": int((sign * d > 0).sum()), "p": p})
            ps = np.array([r["p"] for r in family])
            ok = ~np.isnan(ps)
            holm = np.full(len(ps), np.nan)
            if ok.any():
                holm[ok] = multipletests(ps[ok], alpha=alpha, method="holm")[1]
            for r, ph in zip(family, holm):
                r["p_holm"] = float(ph)
                if math.isnan(ph):
                    r["outcome"] = "untestable"
                elif ph >= alpha and smallest_holm_p(r["n"], int(ok.sum())) >= alpha:  # Holm's family: the tested pairs
                    r["outcome"] = "cannot reject at this n"
                elif ph >= alpha:
                    r["outcome"] = "no significant difference"
                else:
                    r["outcome"] = "A better" if sign * r["mean A − B"] > 0 else "B better"
                rows.append(r)
    return pd.DataFrame(rows, columns=["set", "metric", "A", "B", "n", "mean A − B", "A better on", "p", "p_holm", "outcome"])


def rank_table(per_image: pd.DataFrame, scoring: str, metrics: list[str] | None = None) -> pd.DataFrame:
    """Rank (1 = best in the metric's direction, ties share the best rank) of each method's mean, per
    set and metric: rows (set, method), columns metrics."""
    metrics = [m for m in (metrics or METRIC_NAMES) if m in per_image]
    g = per_image[per_image["scoring"] == scoring]
    missing = g[g[metrics].isna().any(axis=1)]
    if len(missing):  # a mean over fewer images than the others': say where
        warnings.warn(f"rank_table({scoring!r}): means over fewer images where a score is NaN: " + "; ".join(
            f"{r['set']} / {r['method']} / {r['image']}: {', '.join(m for m in metrics if pd.isna(r[m]))}"
            for _, r in missing.head(5).iterrows()) + (f"; … ({len(missing) - 5} more rows)" if len(missing) > 5 else ""),
            stacklevel=2)
    means = g.groupby(["set", "method"], sort=False)[metrics].mean()
    return pd.concat({s: means.loc[s].apply(lambda col: col.rank(ascending=not higher_is_better(col.name), method="min"))
                      for s in dict.fromkeys(g["set"])}, names=["set", "method"])


def mean_ranks(per_image: pd.DataFrame, set_name: str, scoring: str, metrics: list[str] | None = None,
               ) -> tuple[pd.Series, float, pd.DataFrame]:
    """Each method's mean rank (ranked within each image and metric, 1 = best, ties averaged; then
    averaged over the metrics and the images, best first), Friedman's p (scipy) over the images of the
    per-image mean ranks (NaN with fewer than 3 methods or 2 images), and those per-image mean ranks
    (images × methods; what :func:`pairwise`-style tests of a critical-difference diagram compare)."""
    from scipy.stats import friedmanchisquare
    metrics = [m for m in (metrics or METRIC_NAMES) if m in per_image]
    per = []
    for metric in metrics:
        wide = _wide(per_image, set_name, scoring, metric)
        per.append(wide.rank(axis=1, ascending=not higher_is_better(metric), method="average"))
    ranks = pd.concat(per).groupby(level=0).mean()  # images × methods, each image's mean rank over metrics
    gaps = [m for m in ranks.columns if ranks[m].isna().any()]
    if gaps:
        warnings.warn(f"mean_ranks({set_name!r}, {scoring!r}): {', '.join(gaps)} left out: no score on "
                      + "; ".join(f"{m}: {', '.join(map(str, ranks.index[ranks[m].isna()]))}" for m in gaps), stacklevel=2)
    ranks = ranks.dropna(axis=1)
    p = (float(friedmanchisquare(*[ranks[c] for c in ranks.columns]).pvalue)
         if ranks.shape[1] >= 3 and ranks.shape[0] >= 2 else math.nan)
    return ranks.mean().sort_values(), p, ranks


def rank_cliques(ranks: pd.DataFrame, *, alpha: float = 0.05) -> list[list[str]]:
    """The bars of a critical-difference diagram: with methods sorted by mean rank, the maximal runs
    of neighbours among which no pair differs (paired Wilcoxon on the per-image ranks of
    :func:`mean_ranks`, Holm-corrected over all pairs; the Wilcoxon–Holm variant of Demšar's
    diagram, Benavoli et al. 2016). Runs of one method are left out."""
    from statsmodels.stats.multitest import multipletests
    order = list(ranks.mean().sort_values().index)
    pairs = list(itertools.combinations(order, 2))
    ps = []
    for a, b in pairs:
        p = paired_p(ranks[a], ranks[b])  # NaN (too few images, or no difference): not a difference
        ps.append(1.0 if math.isnan(p) else p)
    reject = multipletests(ps, alpha=alpha, method="holm")[0] if ps else []
    differs = {frozenset(p) for p, r in zip(pairs, reject) if r}
    cliques = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and all(frozenset((order[k], order[j + 1])) not in differs for k in range(i, j + 1)):
            j += 1
        if j > i and not any(set(order[i:j + 1]) <= set(c) for c in cliques):
            cliques.append(order[i:j + 1])
    return cliques


def rank_stability(per_image: pd.DataFrame, set_name: str, scoring: str, metric: str, *,
                   n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Ranks of the methods' means under bootstrap resampling of the images (the same resampled
    images for every method): per method its rank on all images, the share of resamples that give
    that same rank, the share that rank it first and the 2.5–97.5 % range of its rank."""
    full = _wide(per_image, set_name, scoring, metric)
    wide = full.dropna(axis=1, how="all").dropna()
    gone_methods = [m for m in full.columns if m not in wide.columns]
    gone_images = [i for i in full.index if i not in wide.index]
    if gone_methods or gone_images:
        warnings.warn(f"rank_stability({set_name!r}, {scoring!r}, {metric!r}): left out "
                      + ", ".join(filter(None, [f"methods without any score: {', '.join(gone_methods)}" if gone_methods else "",
                                                f"images some method has no score on: {', '.join(map(str, gone_images))}"
                                                if gone_images else ""])), stacklevel=2)
    x = wide.to_numpy(float)
    sign = -1 if higher_is_better(metric) else 1  # rank ascending on sign·value: 1 = best

    def ranks(values):
        order = (sign * values).argsort(axis=-1, kind="stable").argsort(axis=-1, kind="stable")
        return order + 1
    point = ranks(x.mean(0))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    boot = ranks(x[idx].mean(1))
    return pd.DataFrame({"method": wide.columns, "rank": point, "same rank": (boot == point).mean(0),
                         "ranked first": (boot == 1).mean(0), "rank 2.5 %": np.percentile(boot, 2.5, axis=0),
                         "rank 97.5 %": np.percentile(boot, 97.5, axis=0)}).sort_values("rank")


# the comparisons of the conformance matrix: (scoring a, scoring b, what changes)
COMPARISONS = [("vifb", "canonical", "VIFB vs canonical"), ("vifb", "tang", "VIFB vs Tang"),
               ("vifb", "lrrnet", "VIFB vs LRRNet/CDDFuse-style"), ("canonical", "tang", "canonical vs Tang"),
               ("canonical", "lrrnet", "canonical vs LRRNet/CDDFuse-style"), ("tang", "lrrnet", "Tang vs LRRNet/CDDFuse-style"),
               ("canonical", "canonical, Y", "grey vs Y"), ("canonical", "canonical, float", "uint8 vs float")]


def conformance(per_image: pd.DataFrame, metrics: list[str] | None = None,
                comparisons: list[tuple[str, str, str]] | None = None) -> pd.DataFrame:
    """For every set, metric and pair of scorings: how far the method means disagree (median over
    methods of |a − b| / mean(|a|, |b|), in %), Kendall's τ (scipy) between the two orderings of the
    methods, the number of method pairs whose order flips, and which ones."""
    from scipy.stats import kendalltau
    metrics = [m for m in (metrics or METRIC_NAMES) if m in per_image]
    means = {key: g.groupby("method", sort=False)[metrics].mean()
             for key, g in per_image.groupby(["set", "scoring"], sort=False)}
    rows = []
    for a, b, what in comparisons or COMPARISONS:
        for set_name in dict.fromkeys(per_image["set"]):
            if (set_name, a) not in means or (set_name, b) not in means:
                continue
            ma, mb = means[(set_name, a)], means[(set_name, b)]
            common = ma.index.intersection(mb.index)
            for metric in metrics:
                x, y = ma.loc[common, metric], mb.loc[common, metric]
                ok = x.notna() & y.notna()
                x, y = x[ok], y[ok]
                scale = (x.abs() + y.abs()) / 2
                rel = float(((x - y).abs() / scale.where(scale > 0)).median() * 100) if len(x) else math.nan
                flips = [f"{p} / {q}" for p, q in itertools.combinations(x.index, 2)
                         if np.sign(x[p] - x[q]) != np.sign(y[p] - y[q])]
                tau = float(kendalltau(x, y).statistic) if len(x) >= 3 else math.nan
                rows.append({"comparison": what, "a": a, "b": b, "set": set_name, "metric": metric, "methods": len(x),
                             "median |Δ| (%)": rel, "Kendall τ": tau, "flipped pairs": len(flips),
                             "pairs": len(x) * (len(x) - 1) // 2, "which": "; ".join(flips)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ complexity on one device

def complexity(methods_: list[Method], sizes: tuple[tuple[int, int], ...] = ((256, 256), (480, 640)), *,
               latency_size: tuple[int, int] = (480, 640), repeats: int = 3, device: str = "cpu",
               seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Parameters (M), FLOPs (G; ``torch.utils.flop_counter``: convolutions, matrix products and
    attention, not FFTs or element-wise work) at each size and the median latency (s) at
    ``latency_size`` over ``repeats`` calls after one warm-up, on ``device``, for every method with a
    fuser. Inputs are random images, fresh for every call (a method may memoise its outputs by content)."""
    gen = torch.Generator().manual_seed(seed)

    def inputs(h, w):
        return (torch.rand(1, 1, h, w, generator=gen).to(device), torch.rand(1, 3, h, w, generator=gen).to(device))
    rows = []
    runnable = [m for m in methods_ if m.fuser is not None and not m.clear_input]  # a control re-uses its method's fuser
    for m in tqdm(runnable, desc="complexity", disable=not progress or os.environ.get("TQDM_DISABLE") == "1"):
        row = {"method": m.name, "family": m.family, "inputs": m.inputs, "weights": m.weights,
               "Params (M)": count_parameters(m.module) / 1e6}
        for h, w in sizes:
            flops, _ = count_flops(m.fuser, *inputs(h, w))  # also the warm-up
            row[f"GFLOPs @ {h}×{w}"] = flops / 1e9
        times = []
        for _ in range(repeats):
            ir, vis = inputs(*latency_size)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.no_grad():
                m.fuser(ir, vis)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        row[f"latency (s) @ {latency_size[0]}×{latency_size[1]}"] = float(np.median(times))
        rows.append(row)
    return pd.DataFrame(rows)
