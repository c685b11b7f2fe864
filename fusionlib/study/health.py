"""Is a trained model alive? Health checks run before any claim is judged on its outputs.

A model that outputs black, a constant, or a copy of one source says nothing about the paper it
reproduces: a claim judged on it is *unresolved*, never "does not hold" (``fusionlib.study.ledger``).
The checks, each with its number (``why`` names the failed ones) and the reason for its threshold
(docs/reviewing.md#health-checks):

====  =====================================================================  ==========
H1    lit share of the output / lit share of the sources' average              ≥ 0.5
H2    std of the output / std of the sources' average (contrast kept)          ≥ 0.25
H3    Pearson r of the output with its closest source (not a copy)             < 0.99
H4    std of a pseudo-IR / std of the real IR (not a constant)                 ≥ 0.25
H5    hot-spot r of the pseudo-IR with the real IR (a constant mean-IR has 0)   ≥ 0.05
H6    share of the total loss carried by each term a claim is about            ≥ 1 %
====  =====================================================================  ==========

"Lit" is a pixel above 2/255, the first grey level a saved output can hold above the output clamp
at 0. H1–H5 take the median (H5: the mean) over the images the model was evaluated on. A model is
``alive = yes`` when every check that applies to it was measured and passed (H2 everywhere; H4 and H5
where the paper makes a pseudo-IR: its door's ``required_health``); a required check that could not be measured makes it ``no`` with that reason, since an
unexamined model is no evidence either. H6 does not kill a model: it marks the terms that carry no
weight (``inactive_terms``), and claims about those terms are unresolved.

Evidence comes from the artefacts a profile's notebooks committed (:func:`evidence`, from each paper's door): the outputs
they saved as images (all measures), a per-image table of the measures themselves (notebook 42's twin
run, :func:`notebook_evidence`), or a per-image table with the output's SD (H2 only), read against the
sources in the data root. A paper's tables speak for the checkpoint their provenance names (parameter
``checkpoint``), else for the first manifest row of its (paper, variant). Driven by ``notebooks/90_claims_ledger.ipynb`` §0.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fusionlib.io import read_image
from fusionlib.metrics.dataset import centre_crop
from fusionlib.paths import data_root, reports_root
from fusionlib.study import registry
from fusionlib.study.reports import run_parameters

__all__ = ["LIT_LEVEL", "THRESHOLDS", "CHECKS", "HEALTH_COLUMNS", "output_measures", "pseudo_ir_measures",
           "loss_shares", "contrast_from_sd", "assess", "OUTPUT_MEASURES", "evidence", "notebook_evidence", "checkpoint_evidence", "health_table",
           "parse_models", "dead_checkpoints"]

LIT_LEVEL = 2 / 255  # "lit": above the first grey level a saved output holds above the clamp at 0
THRESHOLDS = {"H1": 0.5, "H2": 0.25, "H3": 0.99, "H4": 0.25, "H5": 0.05, "H6": 0.01}
CHECKS = {"H1": "lit share vs the sources' average", "H2": "contrast (std) vs the sources' average",
          "H3": "correlation with the closest source (a copy)", "H4": "pseudo-IR contrast vs the real IR",
          "H5": "pseudo-IR hot-spot r with the real IR", "H6": "loss share of a claimed term"}
HEALTH_COLUMNS = ["checkpoint", "paper", "variant", "evaluated_by", "alive", "why", "images", "evidence", "lit_ratio", "contrast_ratio",
                  "max_r", "closest_source", "pir_contrast", "hot_r", "loss_shares", "inactive_terms"]


def _grey(img) -> np.ndarray:
    """An image as grey float64 ``(H, W)`` in [0, 1]: uint8 arrays are /255, tensors ``(…, C, H, W)``
    in [0, 1] are squeezed, colour is averaged over channels (a brightness proxy: these are checks
    of life, not metrics)."""
    if isinstance(img, torch.Tensor):
        img = img.detach().float().cpu().numpy()
        img = img.reshape(img.shape[-3:]) if img.ndim >= 3 else img
        img = img.mean(axis=0) if img.ndim == 3 else img
    arr = np.asarray(img)
    arr = arr.astype(np.float64) / 255 if arr.dtype == np.uint8 else arr.astype(np.float64)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    if arr.ndim != 2:
        raise ValueError(f"expected a (H, W), (H, W, C) or (…, C, H, W) image, got shape {np.shape(img)}")
    return arr


def _r(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return 0.0  # a constant shares nothing with anything: no copy
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


OUTPUT_MEASURES = ("lit_ratio", "contrast_ratio", "r_vis", "r_ir")  # what output_measures returns


def output_measures(fused, ir, vis) -> dict[str, float]:
    """H1–H3 measures of one fused image against its sources (any of uint8 ``H×W(×C)`` or float
    tensors in [0, 1]; the shapes must agree): ``lit_ratio``, ``contrast_ratio``, ``r_vis``, ``r_ir``."""
    f, i, v = _grey(fused), _grey(ir), _grey(vis)
    if not (f.shape == i.shape == v.shape):
        raise ValueError(f"fused {f.shape}, ir {i.shape} and vis {v.shape} must have one shape")
    avg = (i + v) / 2  # the trivial fusion: what any live fuser keeps at least a part of
    lit_avg, std_avg = float((avg > LIT_LEVEL).mean()), float(avg.std())
    return {"lit_ratio": float((f > LIT_LEVEL).mean()) / lit_avg if lit_avg else math.nan,
            "contrast_ratio": float(f.std()) / std_avg if std_avg else math.nan,
            "r_vis": _r(f, v), "r_ir": _r(f, i)}


def contrast_from_sd(sd: float, ir, vis) -> dict[str, float]:
    """H2 from a metric table's SD (the output's population std on 0–255) and the sources."""
    avg = (_grey(ir) + _grey(vis)) / 2
    return {"contrast_ratio": sd / 255 / float(avg.std()) if avg.std() else math.nan}


def pseudo_ir_measures(pseudo_ir, ir) -> dict[str, float]:
    """H4–H5 of one pseudo-IR against the real IR: ``pir_contrast`` (std ratio) and ``hot_r`` (the
    Pearson r of their hot-spot maps, :func:`fusionlib.metrics.agreement.ir_agreement`: 0 for a constant, as
    for a constant mean-IR predictor)."""
    from fusionlib.metrics.agreement import ir_agreement
    p, i = _grey(pseudo_ir), _grey(ir)
    r = ir_agreement(torch.from_numpy(p)[None, None], torch.from_numpy(i)[None, None])["hot-spot r"]
    return {"pir_contrast": float(p.std()) / float(i.std()) if i.std() else math.nan, "hot_r": r}


def loss_shares(log: pd.DataFrame, terms: list[str], *, total: str = "loss", weights: dict[str, float] | None = None,
                group: str | None = None, tail: float = 0.25) -> dict[str, float]:
    """Each term's share of the total loss over the last ``tail`` of the logged steps (per ``group``,
    e.g. the stages of a model trained in stages, as ``"<group>:<term>"``). Logged terms are multiplied by
    ``weights`` (default 1: logs that record weighted terms); the weighted terms must add up to the
    logged total within 1 %, else the weights are wrong and this raises, naming the gap."""
    weights = weights or {}
    out = {}
    for g, d in (log.groupby(group, sort=False) if group else [(None, log)]):
        present = [t for t in terms if t in d.columns and d[t].notna().any()]
        d = d.dropna(subset=present).iloc[-max(1, int(len(d) * tail)):]
        if not present or not len(d):
            continue
        parts = {t: float((d[t] * weights.get(t, 1.0)).mean()) for t in present}
        whole = float(d[total].mean())
        if abs(sum(parts.values()) - whole) > 0.01 * abs(whole):
            raise ValueError(f"the weighted terms {parts} add up to {sum(parts.values()):.6g}, the logged {total!r} "
                             f"is {whole:.6g}{f' (group {g})' if g else ''}: pass the loss weights")
        out.update({(f"{g}:{t}" if g else t): v / whole for t, v in parts.items()})
    return out


def assess(paper: str, images: pd.DataFrame, shares: dict[str, float] | None = None,
           claimed_terms: tuple[str, ...] = ()) -> dict:
    """The verdict of one checkpoint from its per-image measures (columns of :func:`output_measures`,
    :func:`contrast_from_sd`, :func:`pseudo_ir_measures`; absent ones are "not measured") and its
    loss shares: ``alive`` (yes/no), ``why`` (each failed or unmeasured check with its number, or
    "all checks pass"), the medians, and ``inactive_terms``."""
    def med(col):
        return float(images[col].median()) if col in images and images[col].notna().any() else math.nan
    r_vis, r_ir = med("r_vis"), med("r_ir")
    closest = "" if math.isnan(r_vis) and math.isnan(r_ir) else ("VIS" if not r_ir > r_vis else "IR")
    hot = float(images["hot_r"].mean()) if "hot_r" in images and images["hot_r"].notna().any() else math.nan
    m = {"lit_ratio": med("lit_ratio"), "contrast_ratio": med("contrast_ratio"),
         "max_r": np.nanmax([r_vis, r_ir]) if closest else math.nan, "closest_source": closest,
         "pir_contrast": med("pir_contrast"), "hot_r": hot}
    t = THRESHOLDS
    tests = {"H1": (m["lit_ratio"], lambda x: x >= t["H1"], f"lit share {{:.3f}} of the sources' average < {t['H1']}"),
             "H2": (m["contrast_ratio"], lambda x: x >= t["H2"], f"contrast {{:.3f}} of the sources' average < {t['H2']}"),
             "H3": (m["max_r"], lambda x: x < t["H3"], f"r = {{:.4f}} with {closest or 'a source'} ≥ {t['H3']}: a copy of it"),
             "H4": (m["pir_contrast"], lambda x: x >= t["H4"], f"pseudo-IR std {{:.3f}} of the real IR's < {t['H4']}: a constant"),
             "H5": (m["hot_r"], lambda x: x >= t["H5"], f"pseudo-IR hot-spot r {{:.3f}} < {t['H5']} (a constant mean-IR predictor: 0)")}
    required = registry.paper(paper).required_health if paper in registry.papers() else ("H2",)
    why = []
    for code, (value, ok, text) in tests.items():
        if math.isnan(value):
            if code in required:
                why.append(f"{code} not measured ({CHECKS[code]}: no committed output of this checkpoint shows it)")
        elif not ok(value):
            why.append(f"{code} {text.format(value)}")
    alive = "no" if why else "yes"
    inactive = sorted(k for k, v in (shares or {}).items() if k.split(":")[-1] in claimed_terms and v < t["H6"])
    why += [f"H6 {k} carries {(shares or {})[k]:.2g} of the loss < {t['H6']:.0%}: claims about it are unresolved" for k in inactive]
    return {"alive": alive, "why": "; ".join(why) or "all checks pass", **m,
            "loss_shares": "; ".join(f"{k} {v:.3g}" for k, v in (shares or {}).items()),
            "inactive_terms": ", ".join(inactive)}


# ------------------------------------------------------------------ evidence in a profile's artefacts

@dataclass(frozen=True)
class PaperEvidence:
    """Where a profile's artefacts hold one checkpoint family's evaluated outputs and training log.

    ``images``: ``(table, split, VIS folder)``: a table listing the saved outputs (columns ``pair`` or
    ``triplet``, ``file`` and, for a model with a pseudo-IR, ``output`` = fused / pseudo_ir; paths relative to the table's
    folder) and the dataset split whose ``ir`` and VIS folder hold their sources. ``measures``:
    ``(table, column, value)``: the rows of a per-image table with :func:`output_measures`' columns
    where ``column`` equals ``value`` (notebook 42's twin run: ``arm = ours``). ``sd_tables``:
    ``(table, dataset or None, method regex)``: per-image metric tables with the output's SD (the
    ``dataset`` column when None; the method must match the expression whole). ``log``: the training
    log, its terms and weights (:func:`loss_shares`), per ``group`` (its training stages)."""
    images: tuple = ()
    measures: tuple = ()
    sd_tables: tuple = ()
    log: str = ""
    terms: tuple = ()
    weights: tuple = ()
    group: str | None = None


def evidence() -> dict[tuple[str, str], PaperEvidence]:
    """(paper, variant) -> where a profile's artefacts hold that checkpoint family's outputs and log: each paper's door."""
    return {(key, variant): spec for key, door in registry.papers().items() for variant, spec in door.evidence.items()}


def notebook_evidence() -> dict[str, PaperEvidence]:
    """Notebook prefix -> the evidence of a checkpoint trained and evaluated by another notebook than its paper's
    tables (its manifest command names it): each paper's door."""
    return {nb: spec for door in registry.papers().values() for nb, spec in door.notebook_evidence.items()}


# benchmark set -> dataset split and the VIS folder its metrics use as reference (fusionlib.study.benchmark.SETS)
_BENCHMARK_SOURCES = {"MSRS": ("msrs/test", "vi"), "TNO": ("tno/test", "vi"), "RoadScene": ("roadscene/test", "vi"),
                      "M3FD": ("m3fd/test", "vi"), "hazy MSRS": ("msrs_hazy/test", "vi_clear")}


def _file(folder: Path, name: str) -> Path | None:
    """``folder/name``, or the file of the same stem (tables name RoadScene's JPEGs ``.png``), or None."""
    if (folder / name).is_file():
        return folder / name
    found = sorted(folder.glob(Path(name).stem + ".*")) if folder.is_dir() else []
    return found[0] if found else None


def _has_sources(split: str, name: str) -> bool:
    return _file(data_root() / split / "ir", name) is not None


def _sources(split: str, vis_folder: str, name: str, crop: int = 0):
    folder = data_root() / split
    ir, vis = read_image(_file(folder / "ir", name), "L"), read_image(_file(folder / vis_folder, name), "L")
    if crop:  # the benchmark scored centre crops (fusionlib.metrics.dataset.cropped)
        ir, vis = (centre_crop(x, crop) for x in (ir, vis))
    return ir, vis


def _notebook_evidence(entry, profile: str, root: Path) -> PaperEvidence | None:
    """:func:`notebook_evidence` of the notebook that trained ``entry`` (its manifest command), if its table
    speaks for this checkpoint: the one its provenance names (parameter ``checkpoint``) or, where it names
    none, a row that is not a ``-regen`` copy (made after the table was written)."""
    spec = notebook_evidence().get(entry.notebook)
    if spec is None:
        return None
    named = run_parameters(spec.measures[0], profile, root).get("checkpoint")
    return spec if (entry.name == named if named else not entry.name.endswith("-regen")) else None


def _evaluated(entries, profile: str, root: Path) -> set[str]:
    """The checkpoint the paper notebook evaluated per (paper, variant) of ``profile``: the one its first
    evidence table's provenance names (parameter ``checkpoint``), else the first manifest row (a
    ``-regen`` row re-made a lost file for the benchmark after the paper tables were written)."""
    names = {e.name for e in entries}
    chosen: dict[tuple[str, str], str] = {}
    for e in entries:
        key = (e.paper, e.variant)
        if key in chosen:
            continue
        spec = evidence().get(key)
        tables = ([spec.images[0]] if spec.images else []) + [t for t, _, _ in spec.sd_tables] if spec else []
        params = next((p for p in (run_parameters(t, profile, root) for t in tables) if p), {})  # the first table with a sidecar
        named = params.get("checkpoint")
        chosen[key] = named if named in names else e.name
    return set(chosen.values())


def checkpoint_evidence(entry, profile: str, root: Path, *, paper_owned: bool) -> tuple[pd.DataFrame, dict, list[str]]:
    """Per-image measures, loss shares and the artefacts read, for one manifest entry in ``profile``.

    ``paper_owned``: the entry is the one its paper's notebook evaluated (:func:`evidence`); else
    only the benchmark's per-image table, where the method name carries ``[<checkpoint>]``, speaks for it."""
    base = root / profile
    rows, used, shares = [], [], {}
    own = _notebook_evidence(entry, profile, root)
    spec = own or evidence().get((entry.paper, entry.variant))
    if (paper_owned or own) and spec is not None:
        if spec.measures and (base / spec.measures[0]).is_file():
            table, column, value = spec.measures
            d = pd.read_csv(base / table)
            rows += d.loc[d[column] == value, ["image", *OUTPUT_MEASURES]].to_dict("records")
            used.append(f"{profile}/{table}")
        if spec.images and (base / spec.images[0]).is_file():
            table, split, vis_folder = spec.images
            listing = pd.read_csv(base / table)
            folder = (base / table).parent
            key = "pair" if "pair" in listing.columns else "triplet"
            for name, g in listing.groupby(key, sort=False):
                files = dict(zip(g["output"], g["file"])) if "output" in g else {"fused": g["file"].iloc[0]}
                if not _has_sources(split, name):
                    continue
                ir, vis = _sources(split, vis_folder, name)
                row = {"image": name, **output_measures(read_image(folder / files["fused"], "L"), ir, vis)}
                if "pseudo_ir" in files:
                    row.update(pseudo_ir_measures(read_image(folder / files["pseudo_ir"], "L"), ir))
                rows.append(row)
            used.append(f"{profile}/{table}")
        for table, dataset, label in spec.sd_tables:
            if not (base / table).is_file():
                continue
            d = pd.read_csv(base / table)
            d = d[d["method"].astype(str).str.fullmatch(label)]
            for r in d.itertuples():
                ds = dataset or r.dataset
                if pd.isna(r.SD) or not _has_sources(f"{ds}/test", r.image):
                    continue
                rows.append({"image": f"{ds}/{r.image}", **contrast_from_sd(float(r.SD), *_sources(f"{ds}/test", "vi", r.image))})
            used.append(f"{profile}/{table}")
        if spec.log and (base / spec.log).is_file():
            shares = loss_shares(pd.read_csv(base / spec.log), list(spec.terms), weights=dict(spec.weights), group=spec.group)
            used.append(f"{profile}/{spec.log}")
    bench = base / "benchmark" / "per_image.csv"
    if not rows and bench.is_file():
        crop = int(json.loads((base / "benchmark" / "per_image.provenance.json").read_text())["parameters"].get("crop", 0))
        d = pd.read_csv(bench, usecols=["set", "scoring", "method", "image", "SD"])
        d = d[(d["scoring"] == "vifb") & d["method"].str.endswith(f"[{entry.name}]") & d["set"].isin(list(_BENCHMARK_SOURCES))]
        for r in d.itertuples():
            split, vis_folder = _BENCHMARK_SOURCES[r.set]
            if _has_sources(split, r.image):
                rows.append({"image": f"{r.set}/{r.image}", **contrast_from_sd(float(r.SD), *_sources(split, vis_folder, r.image, crop))})
        if len(d):
            used.append(f"{profile}/benchmark/per_image.csv")
    return pd.DataFrame(rows), shares, used


def health_table(claims: pd.DataFrame | None = None, profile: str = "cpu", root: str | Path | None = None,
                 entries=None) -> pd.DataFrame:
    """:data:`HEALTH_COLUMNS` for every manifest checkpoint trained in ``profile``, from that profile's
    committed artefacts and the sources in the data root; ``evaluated_by`` says whose tables rest on
    it (its paper notebook's, or only the benchmark's). ``claims`` (the ledger's table) names the
    loss terms its claims rest on (``model`` column, ``… terms a,b``) for H6."""
    from fusionlib import checkpoints
    root = Path(root or reports_root())
    entries = [e for e in (list(checkpoints.manifest().values()) if entries is None else entries) if e.profile == profile]
    claimed: dict[str, set[str]] = {}
    if claims is not None and "model" in claims:
        for spec in claims["model"]:
            for model, terms in parse_models(spec):
                claimed.setdefault(model, set()).update(terms)
    owned = _evaluated(entries, profile, root)
    out = []
    for e in entries:
        images, shares, used = checkpoint_evidence(e, profile, root, paper_owned=e.name in owned)
        verdict = assess(e.paper, images, shares, tuple(claimed.get(f"{e.paper}:{e.variant}", ())))
        out.append({"checkpoint": e.name, "paper": e.paper, "variant": e.variant, "images": len(images),
                    "evaluated_by": "paper notebook" if e.name in owned or _notebook_evidence(e, profile, root) else "benchmark",
                    "evidence": ", ".join(used) or "none committed", **verdict})
    return pd.DataFrame(out, columns=HEALTH_COLUMNS)


def parse_models(spec: str) -> list[tuple[str, tuple[str, ...]]]:
    """A claims row's ``model`` field, ``"paper:variant [terms a,b]; …"``, as ``[(model, terms)]``."""
    out = []
    for part in filter(None, (p.strip() for p in str(spec or "").split(";"))):
        model, _, terms = part.partition(" terms ")
        out.append((model.strip(), tuple(t.strip() for t in terms.split(",") if t.strip())))
    return out


def dead_checkpoints(health: pd.DataFrame) -> dict[str, str]:
    """checkpoint -> why, for every ``alive = no`` row."""
    return dict(zip(health.loc[health["alive"] == "no", "checkpoint"], health.loc[health["alive"] == "no", "why"]))
