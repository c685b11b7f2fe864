"""The claims ledger: one verdict per claim of the four papers, computed from our artefacts.

Driven by ``notebooks/90_claims_ledger.ipynb``. The claims are data the project owns,
``reports/claims/claims.csv`` (columns :data:`CLAIM_COLUMNS`): each has the paper's location, the
artefact that holds our evidence (a path under ``reports/<profile>/``, found through the profile's
index) and a ``check``, a one-line rule that turns the artefact into a verdict:

==============================  ===================================================================
``none``                        not testable here; ``missing`` says what is missing and how to run it
``verdicts``                    rows with a ``verdict`` column (:func:`fusionlib.claims.judge`)
``text <column>``               rows whose column reads "holds"/"comparable holds" or "does not hold"
``compare <column> <op> <x>``   each row's value satisfies the comparison (``>=``, ``<=``, ``>``, ``<``, ``==``)
``equal <column> == <column>``  the two columns agree in each row
``equals <column> = <text>``    the column reads that text in each row (e.g. a paired test's outcome)
``close <pct>``                 ``ours`` within ``pct`` % of ``paper`` (tables with those columns)
``better <A> than <B>``         per metric, our row A beats our row B in the metric's direction
``best <A>``                    per metric, our row A ranks first among the rows we measured
``p <p column> sign <column>``   a significant (p < 0.05) difference whose sign column is positive
``mean-rank <A>``               our row A has the best rank averaged over the metrics
``decreases <column> by <g>``   in each group g the column's last value is below its first (finite)
``near <pct> <column> to <T>/<row>/<metric>``  each row's column within ``pct`` % of that transcribed paper value
``internal <X>``                the paper's own numbers agree with it (:func:`internal_checks`)
``code <name>``                 a check of the package's code (:data:`CODE_CHECKS`)
==============================  ===================================================================

Any rule may end with ``| <pandas query>`` selecting the rows it reads. Each selected row (or metric)
passes, fails, or is **unresolved**: a difference inside the seed noise floor (the claim's ``noise``
artefact, :func:`noise_floor`), a row its notebook flagged "not resolved", a paired test that is not
significant (neither shown nor refuted at this n) or could not be at the number of images used, a
metric value outside its plausible range (:data:`fusionlib.metrics.PLAUSIBLE`), or a relative gain
over a denominator near 0. Of the resolved ones: all pass: **holds**; some: **partly holds** (the
note names which); none: **does not hold** (the note gives what we measured). All unresolved:
**unresolved**, with the reasons. A claim whose ``model`` (``paper:variant``, optionally ``terms a,b``)
names a checkpoint that is not alive (:mod:`fusionlib.health`), or loss terms that carry no weight
(H6), is **unresolved** whatever its rows say. None selected or no artefact: **not testable here**
(the note says what is missing). The papers' internal inconsistencies are computed from
``reports/paper_values/`` by :func:`internal_checks`, never asserted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd

from fusionlib.metrics import COSTS, METRICS, higher_is_better, implausible
from fusionlib.paths import reports_root
from fusionlib.reports import load_paper_values, read_index, run_parameters

__all__ = ["CLAIM_COLUMNS", "VERDICTS", "PROFILE_ORDER", "MAX_GAIN_PCT", "Evidence", "load_claims", "find_evidence",
           "noise_floor", "judge_claim", "ledger", "all_health", "internal_checks", "CODE_CHECKS", "paper_recipe",
           "run_scale", "scored_on"]

CLAIM_COLUMNS = ["id", "paper", "claim", "where", "kind", "testable", "evidence", "check", "criterion", "missing", "internal",
                 "model", "noise"]
VERDICTS = ("holds", "partly holds", "does not hold", "unresolved", "not testable here")
ALPHA = 0.05
# A relative gain above this many percent only arises from a denominator near 0 (e.g. a Nabf of 2e-6):
# it is not a percentage of anything a reader can use, and it carries no verdict.
MAX_GAIN_PCT = 1000.0
PROFILE_ORDER = ("full", "gpu", "cpu", "smoke")  # the best evidence first
# which notebook writes a paper folder's artefacts (for "run this to produce it" notes)
WRITERS = {"lrcfuse": "12_", "dcmif": "22_", "iassf": "32_", "ldfusion": "41_", "benchmark": "91_",
           "foundation": "00_", "metrics": "01_"}
_OPS = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, "<": lambda a, b: a < b,
        "==": lambda a, b: a == b}


def load_claims(path: str | Path | None = None) -> pd.DataFrame:
    """``reports/claims/claims.csv`` with its columns checked and its ids unique."""
    path = Path(path or reports_root() / "claims" / "claims.csv")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(df.columns) != CLAIM_COLUMNS:
        raise ValueError(f"{path} has columns {list(df.columns)}, expected {CLAIM_COLUMNS}")
    dup = df["id"][df["id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{path} lists claim ids twice: {dup}")
    bad = df[~df["testable"].str.match(r"^(yes|partly|no)\b")]
    if len(bad):
        raise ValueError(f"{path}: testable must start with yes, partly or no (rows {bad['id'].tolist()})")
    return df


@dataclass
class Evidence:
    path: Path
    profile: str
    artefact: str  # relative to the reports root, as the index lists it


def find_evidence(artefact: str, root: str | Path | None = None, profiles=PROFILE_ORDER) -> Evidence | None:
    """The best profile's copy of ``artefact`` (a path under ``reports/<profile>/``) that its
    profile's index lists and that exists, or ``None``."""
    root = Path(root or reports_root())
    for profile in profiles:
        rel = f"{profile}/{artefact}"
        if (root / rel).is_file() and any(r["artefact"] == rel for r in read_index(root, profile)):
            return Evidence(root / rel, profile, rel)
    return None


def _is_metric(column: str) -> bool:
    return column.split(":")[0].strip() in METRICS or any(c in column for c in COSTS) or column.startswith("mean ")


def _label(row: pd.Series) -> str:
    parts = [str(v) for k, v in row.items() if isinstance(v, str) and k not in ("note", "reading", "source")][:3]
    return " / ".join(parts) or str(row.name)


def _long(df: pd.DataFrame) -> pd.DataFrame:
    """rows × metrics of ``ours`` from a paper/ours/Δ table, or a wide table (first column = row)."""
    if {"row", "metric", "ours"} <= set(df.columns):
        d = df[~df["metric"].astype(str).str.contains(":")]
        return d.pivot_table(index="row", columns="metric", values="ours", aggfunc="first", sort=False)
    wide = df.set_index(df.columns[0])
    return wide[[c for c in wide.columns if _is_metric(c)]].apply(pd.to_numeric, errors="coerce")


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def noise_floor(spec: str, root: str | Path | None = None, profiles=PROFILE_ORDER) -> dict[str, float]:
    """metric -> the seed noise floor named by a claim's ``noise`` field, ``"<artefact> <how>"``:

    - ``std``: rows labelled by metric (a ``metric`` column, else the first) with a ``std`` column (the
      spread of one configuration over seeds);
    - ``seeds``: one row per seed, one column per metric: their standard deviation (ddof 1);
    - ``row <label>``: the row whose first column reads ``label`` (e.g. "noise floor (max − min)");
    - ``column <name>``: rows labelled by metric (a ``metric`` column) with the floor in the named column
      (e.g. a twin run's "noise floor (ours vs ours resampled)"; the first row of each metric).

    Empty when ``spec`` is empty or its artefact is in no profile's index."""
    if not str(spec or "").strip():
        return {}
    artefact, _, how = spec.strip().partition(" ")
    ev = find_evidence(artefact, root, profiles)
    if ev is None:
        return {}
    d = pd.read_csv(ev.path)
    how = how.strip()
    if how == "std":
        label = "metric" if "metric" in d.columns else d.columns[0]
        return {str(r[label]): float(r["std"]) for _, r in d.iterrows() if pd.notna(r["std"])}
    if how == "seeds":
        cols = [c for c in d.columns if c in METRICS]
        return {c: float(d[c].astype(float).std(ddof=1)) for c in cols}
    if how.startswith("row "):
        row = d[d[d.columns[0]].astype(str) == how[4:].strip()]
        return {c: float(row[c].iloc[0]) for c in d.columns[1:] if c in METRICS and len(row) and pd.notna(row[c].iloc[0])}
    if how.startswith("column "):
        column = how[7:].strip()
        if column not in d.columns or "metric" not in d.columns:
            raise ValueError(f"noise spec {spec!r}: {ev.artefact} has no 'metric' and {column!r} columns ({list(d.columns)})")
        firsts = d.dropna(subset=[column]).drop_duplicates("metric")
        return {str(r["metric"]): float(r[column]) for _, r in firsts.iterrows()}
    raise ValueError(f"bad noise spec {spec!r}: end it with 'std', 'seeds', 'row <label>' or 'column <name>'")


# an outcome: (label, passed: True / False / None for unresolved, what we measured and, if None, why)
Outcome = tuple[str, "bool | None", str]


def _ordered(metric: str, label: str, x: float, other: str, y: float, floor: dict[str, float]) -> Outcome | None:
    """None when the two values are resolved, else the unresolved outcome that says why."""
    flag = implausible(metric, x) or implausible(metric, y)
    if flag:
        return (label, None, flag)
    f = floor.get(metric)
    if f is not None and abs(x - y) < f:
        return (label, None, f"{label}: |Δ| = {abs(x - y):.3g} to {other} is inside the seed noise floor {f:.3g}")
    return None


def _smallest_p(n: int) -> float:
    """The smallest two-sided exact Wilcoxon signed-rank p over n pairs (every difference one sign)."""
    return 2.0 / 2 ** n if n > 0 else 1.0


def _pairs(row: pd.Series) -> int | None:
    for col in ("pairs", "n"):
        if col in row and pd.notna(row[col]):
            return int(row[col])
    for v in row.values:
        m = re.fullmatch(r"\d+ of (\d+)", str(v).strip())
        if m:
            return int(m.group(1))
    return None


def _rule_outcomes(rule: str, df: pd.DataFrame, floor: dict[str, float] | None = None) -> list[Outcome]:
    """(label, passed or None, what we measured) for each selected row or metric."""
    floor = floor or {}
    words = rule.split()
    kind = words[0]
    if kind == "verdicts":
        d = df[df["verdict"] != "not measurable here"]
        out = []
        for _, r in d.iterrows():
            label, what = f"{r['table']} {r['claim']} {r['metric']}", f"paper {_fmt(r['paper'])}, ours {_fmt(r['ours'])}"
            note = str(r.get("note", ""))
            if "not resolved" in note:
                out.append((label, None, f"{what}; {note.split('; ', 1)[-1]}"))
            elif "gain" in str(r["claim"]) and pd.notna(r["ours"]) and abs(float(r["ours"])) > MAX_GAIN_PCT:
                out.append((label, None, f"{what} %: a gain over {MAX_GAIN_PCT:,.0f} % comes from a denominator near 0 "
                                         f"({note}), not a percentage"))
            else:
                out.append((label, r["verdict"] == "holds", what))
        return out
    if kind == "text":
        col = rule[len("text "):].strip()
        out = []
        for _, r in df.iterrows():
            v = str(r[col])
            if v.startswith(("holds", "comparable holds")) or v == "yes":
                out.append((_label(r), True, v))
            elif v.startswith(("does not hold", "no")):
                out.append((_label(r), False, v))
        return out
    if kind == "compare":
        m = re.match(r"compare (.+?) (>=|<=|==|>|<) (-?[\d.e+-]+)$", rule)
        if not m:
            raise ValueError(f"bad compare rule {rule!r}")
        col, op, x = m.group(1), m.group(2), float(m.group(3))
        d = df[df[col].notna()]
        return [(_label(r), None, implausible(col, r[col])) if implausible(col, r[col]) else
                (_label(r), bool(_OPS[op](float(r[col]), x)), f"{col} = {_fmt(float(r[col]))}") for _, r in d.iterrows()]
    if kind == "equals":
        m = re.match(r"equals (.+?) = (.+)$", rule)
        col, value = m.group(1), m.group(2).strip()
        out = []
        for _, r in df.iterrows():
            v = str(r[col])
            if col == "outcome" and v in ("cannot reject at this n", "no significant difference"):
                why = "no test could reject at this n" if v.startswith("cannot") else "not significant: neither shown nor refuted"
                out.append((_label(r), None, f"{col}: {v} ({why})"))
            else:
                out.append((_label(r), v == value, f"{col}: {v}"))
        return out
    if kind == "equal":
        a, b = rule[len("equal "):].split(" == ")
        return [(_label(r), bool(r[a] == r[b]), f"{a} {_fmt(r[a])}, {b} {_fmt(r[b])}") for _, r in df.iterrows()]
    if kind == "close":
        pct = float(words[1])
        d = df[df["paper"].notna() & df["ours"].notna()]
        return [(f"{r['row']} {r['metric']}", None, implausible(r["metric"], r["ours"])) if implausible(r["metric"], r["ours"]) else
                (f"{r['row']} {r['metric']}", abs(r["ours"] - r["paper"]) <= pct / 100 * abs(r["paper"]),
                 f"paper {_fmt(r['paper'])}, ours {_fmt(r['ours'])}") for _, r in d.iterrows()]
    if kind == "near":
        m = re.match(r"near ([\d.]+) (.+?) to (.+)/(.+)/(.+)$", rule)
        if not m:
            raise ValueError(f"bad near rule {rule!r}: near <pct> <column> to <table>/<row>/<metric>")
        pct, col, table, row, metric = float(m.group(1)), m.group(2), m.group(3), m.group(4), m.group(5)
        pv = _wide(df.attrs["paper"], table, df.attrs.get("root")).at[row, metric]
        return [(_label(r), abs(float(r[col]) - pv) <= pct / 100 * abs(pv),
                 f"{col} = {_fmt(float(r[col]))} against the paper's {_fmt(float(pv))} ({(float(r[col]) / pv - 1) * 100:+.1f} %)")
                for _, r in df.iterrows() if pd.notna(r[col])]
    if kind == "better":
        m = re.match(r"better (.+) than (.+)$", rule)
        a, b = m.group(1), m.group(2)
        wide = _long(df)
        if a not in wide.index or b not in wide.index:
            return []
        out = []
        for metric in wide.columns:
            x, y = wide.at[a, metric], wide.at[b, metric]
            if pd.notna(x) and pd.notna(y):
                what = f"{a} {_fmt(float(x))}, {b} {_fmt(float(y))}"
                unresolved = _ordered(metric, metric, float(x), b, float(y), floor)
                out.append((metric, None, f"{what}; {unresolved[2]}") if unresolved else
                           (metric, bool((x > y) if higher_is_better(metric) else (x < y)), what))
        return out
    if kind == "best":
        a = rule[len("best "):].strip()
        wide = _long(df)
        if a not in wide.index:
            return []
        out = []
        for metric in wide.columns:
            col = wide[metric].dropna().astype(float)
            if a in col.index and len(col) > 1:
                rank = int(col.rank(ascending=not higher_is_better(metric), method="min")[a])
                rest = col.drop(index=a)
                nearest = (rest - col[a]).abs().idxmin()
                unresolved = _ordered(metric, metric, col[a], nearest, rest[nearest], floor)
                what = f"rank {rank} of {len(col)}"
                out.append((metric, None, f"{what}; {unresolved[2]}") if unresolved else (metric, rank == 1, what))
        return out
    if kind == "mean-rank":
        a = rule[len("mean-rank "):].strip()
        wide = _long(df)
        if a not in wide.index:
            return []
        ranks = pd.DataFrame({m: wide[m].rank(ascending=not higher_is_better(m), method="min") for m in wide.columns}).mean(axis=1)
        best = ranks.idxmin()
        what = f"{a} {ranks[a]:.2f}, best {best} {ranks[best]:.2f} (of {len(ranks)} rows)"
        label = f"mean rank over {wide.shape[1]} metrics"
        if floor:  # every metric's order against the best row inside the floor: the ranking is not resolved
            close = [m for m in wide.columns if m in floor and pd.notna(wide.at[a, m]) and pd.notna(wide.at[best, m])
                     and abs(wide.at[a, m] - wide.at[best, m]) < floor[m]]
            if best != a and len(close) == wide.shape[1]:
                return [(label, None, f"{what}; {a} and {best} differ inside the seed noise floor on every metric")]
        return [(label, best == a, what)]
    if kind == "decreases":
        m = re.match(r"decreases (.+) by (.+)$", rule)
        col, group = m.group(1), m.group(2)
        out = []
        for g, d in df.groupby(group, sort=False):
            v = d[col].dropna().astype(float)
            if len(v) >= 2:
                ok = bool(v.iloc[-1] < v.iloc[0] and math.isfinite(v.max()))
                out.append((str(g), ok, f"{col} {v.iloc[0]:.4g} → {v.iloc[-1]:.4g} over {len(v)} logged steps"))
        return out
    if kind == "p":
        pcol, scol = rule[2:].split(" sign ")
        out = []
        for _, r in df.iterrows():
            if pd.isna(r[pcol]):
                continue
            p, sign = float(r[pcol]), float(r[scol])
            what = f"{scol} {_fmt(sign)}, p = {_fmt(p)}"
            n = _pairs(r)
            if p >= ALPHA and n is not None and _smallest_p(n) >= ALPHA:
                out.append((_label(r), None, f"{what}; no test over {n} pairs can reach p < {ALPHA} (the smallest is {_smallest_p(n):.3g})"))
            elif p >= ALPHA:
                out.append((_label(r), None, f"{what}; not significant{f' over {n} pairs' if n else ''}: neither shown nor refuted"))
            else:
                out.append((_label(r), sign > 0, what))
        return out
    raise ValueError(f"unknown check {kind!r} in {rule!r}")


def _verdict(outcomes: list[Outcome]) -> tuple[str, str]:
    open_ = [o for o in outcomes if o[1] is None]
    passed = [o for o in outcomes if o[1] is not None and bool(o[1])]
    failed = [o for o in outcomes if o[1] is not None and not bool(o[1])]

    def show(items, n=4):
        return "; ".join(f"{label}: {what}" if not what.startswith(label) else what for label, _, what in items[:n]) \
            + (f"; … ({len(items) - n} more)" if len(items) > n else "")
    if not outcomes:
        return "not testable here", "the evidence has no row this check selects"
    tail = f"; unresolved ({len(open_)} of {len(outcomes)}): {show(open_, 3)}" if open_ else ""
    if not passed and not failed:
        return "unresolved", f"0 of {len(outcomes)} resolved: {show(open_)}"
    resolved = len(passed) + len(failed)
    if not failed:
        return "holds", f"{len(passed)} of {resolved} resolved pass: {show(passed)}{tail}"
    if not passed:
        return "does not hold", f"0 of {resolved} resolved pass; measured: {show(failed)}{tail}"
    return "partly holds", f"{len(passed)} of {resolved} resolved pass ({show(passed, 3)}); fail: {show(failed, 3)}{tail}"


def _model_health(claim: dict, ev: Evidence, health: pd.DataFrame | None) -> str:
    """Why the checkpoints (or loss terms) a claim's evidence rests on cannot carry a verdict, or ''.
    The checkpoints are those of the evidence's profile that wrote it: the paper notebook's, or the
    benchmark's for a benchmark artefact."""
    from fusionlib.health import parse_models
    if health is None or not len(health):
        return ""
    reasons = []
    by = "benchmark" if ev.artefact.split("/")[1:2] == ["benchmark"] else "paper notebook"
    for model, terms in parse_models(claim.get("model", "")):
        paper, _, variant = model.partition(":")
        rows = health[(health["paper"] == paper) & (health["variant"] == variant)
                      & (health["profile"] == ev.profile if "profile" in health else True)
                      & (health["evaluated_by"] == by if "evaluated_by" in health else True)]
        for r in rows.itertuples():
            if r.alive == "no":
                reasons.append(f"it rests on {r.checkpoint}, which is not alive ({r.why})")
            inactive = [t for t in str(r.inactive_terms or "").split(", ") if t and t.split(":")[-1] in terms]
            if inactive:
                reasons.append(f"it rests on the loss terms {', '.join(inactive)} of {r.checkpoint}, which carry no weight "
                               f"(H6: {r.loss_shares})")
    return "; ".join(reasons)


def judge_claim(claim: pd.Series | dict, root: str | Path | None = None, profiles=PROFILE_ORDER,
                health: pd.DataFrame | None = None) -> dict:
    """The verdict of one claim row: ``verdict``, ``note``, ``evidence`` (the artefact used, relative
    to the reports root, or "") and ``profile``. ``health`` (:func:`fusionlib.health.health_table`, with
    a ``profile`` column) makes a claim whose ``model`` is not alive unresolved."""
    claim = dict(claim)
    check = claim["check"].strip()
    if check == "none" or not check:
        return {"verdict": "not testable here", "note": claim["missing"] or "no evidence is named", "evidence": "", "profile": ""}
    if check.startswith("internal "):
        found = internal_checks(root).set_index("id").loc[check.split()[1]]
        return {"verdict": "holds" if found["consistent"] else "does not hold", "profile": "paper values",
                "note": f"{found['check']}: {found['finding']}", "evidence": f"paper_values/{found['paper']}.csv"}
    if check.startswith("code "):
        name = check.split()[1]
        ok, what = CODE_CHECKS[name]()
        return {"verdict": "holds" if ok else "does not hold", "note": what, "evidence": CODE_EVIDENCE[name], "profile": "code"}
    ev = find_evidence(claim["evidence"], root, profiles)
    if ev is None:
        folder = claim["evidence"].split("/")[0]
        writer = WRITERS.get(folder, "")
        how = f"run `make reproduce PROFILE=cpu ONLY={writer}`" if writer else "run the notebook that writes it"
        return {"verdict": "not testable here", "evidence": "", "profile": "",
                "note": f"missing evidence: {claim['evidence']} is in no profile's index ({how}). {claim['missing']}".strip()}
    rule, _, query = check.partition("|")
    df = pd.read_csv(ev.path)
    if query.strip():
        df = df.query(query.strip(), engine="python")
    df.attrs.update(paper=claim["paper"], root=root)
    floor = noise_floor(claim.get("noise", ""), root, (ev.profile,))
    verdict, note = _verdict(_rule_outcomes(rule.strip(), df, floor))
    if verdict == "not testable here":
        if "verdict" in df.columns and len(df):  # every row "not measurable here": its own reasons
            note = "the notebook measured none of it: " + "; ".join(f"{r['metric']}: {r['note']}" for _, r in df.iterrows())
        if claim["missing"]:
            note += f"; {claim['missing']}"
    else:
        dead = _model_health(claim, ev, health)
        if dead:
            verdict, note = "unresolved", f"{dead}; what it measured: {note}"
    return {"verdict": verdict, "note": note, "evidence": ev.artefact, "profile": ev.profile}


def ledger(claims: pd.DataFrame | None = None, root: str | Path | None = None, profiles=PROFILE_ORDER,
           health: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every claim with its computed verdict (columns of :func:`judge_claim` added), judged against
    ``health`` (default: :func:`fusionlib.health.health_table` of every profile with trained checkpoints)."""
    claims = load_claims() if claims is None else claims
    if health is None:
        health = all_health(claims, root)
    rows = [{**c, **judge_claim(c, root, profiles, health)} for c in claims.to_dict("records")]
    return pd.DataFrame(rows)


def all_health(claims: pd.DataFrame | None = None, root: str | Path | None = None) -> pd.DataFrame:
    """:func:`fusionlib.health.health_table` for every profile whose checkpoints the manifest lists,
    with a ``profile`` column first."""
    from fusionlib import checkpoints
    from fusionlib.health import HEALTH_COLUMNS, health_table
    profiles = sorted({e.profile for e in checkpoints.manifest().values()})
    parts = [health_table(claims, p, root).assign(profile=p) for p in profiles]
    cols = ["profile", *HEALTH_COLUMNS]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


# ------------------------------------------------------------------ checks of our own code

def _ldfusion_inference_without_clip() -> tuple[bool, str]:
    import inspect

    from fusionlib.ldfusion import model as ldm
    src = inspect.getsource(ldm)
    uses = [w for w in ("clip", "open_clip", "CLIP") if re.search(rf"\b{w}\b", src)]
    return not uses, ("fusionlib/ldfusion/model.py (the inference network) never mentions CLIP: it is used by the loss "
                      "(fusionlib/ldfusion/loss.py) only" if not uses else f"the inference network mentions {uses}")


def _ldfusion_parameter_count() -> tuple[bool, str]:
    from fusionlib.common.complexity import count_parameters
    from fusionlib.ldfusion.model import LDFusion
    n = count_parameters(LDFusion())
    return round(n / 1e6, 2) == 5.78, f"{n:,} parameters ({n / 1e6:.3f} M; the authors' code: 5,776,977)"


def _dcmif_visible_only() -> tuple[bool, str]:
    import inspect

    from fusionlib.dcmif.model import DCMIF
    params = list(inspect.signature(DCMIF.forward).parameters)[1:]
    return not any("ir" == p or p.startswith("ir_") for p in params), f"DCMIF.forward takes {params}: no infrared input"


def _iassf_blocks_add_parameters() -> tuple[bool, str]:
    from fusionlib.common.complexity import count_parameters
    from fusionlib.iassf.model import IASSF
    counts = {m: count_parameters(IASSF(blocks=m)) for m in (1, 3, 5, 7)}
    share = [(counts[b] - counts[a]) / 2 / counts[a] for a, b in zip((1, 3, 5), (3, 5, 7))]  # per block, of the model
    return all(s >= 0.01 for s in share), ("M = 1, 3, 5, 7: " + ", ".join(f"{c / 1e6:.3f} M" for c in counts.values())
                                           + "; each block adds " + ", ".join(f"{s * 100:.2f} %" for s in share)
                                           + " of the model (criterion for 'substantial': ≥ 1 %)")


CODE_CHECKS: dict[str, Callable[[], tuple[bool, str]]] = {
    "ldfusion_inference_without_clip": _ldfusion_inference_without_clip,
    "ldfusion_parameter_count": _ldfusion_parameter_count,
    "dcmif_visible_only": _dcmif_visible_only,
    "iassf_blocks_add_parameters": _iassf_blocks_add_parameters,
}
CODE_EVIDENCE = {"ldfusion_inference_without_clip": "../fusionlib/ldfusion/model.py",
                 "ldfusion_parameter_count": "../fusionlib/ldfusion/model.py",
                 "dcmif_visible_only": "../fusionlib/dcmif/model.py",
                 "iassf_blocks_add_parameters": "../fusionlib/iassf/model.py"}


# ------------------------------------------------------------------ the papers' internal consistency

def _wide(paper: str, table: str, root=None) -> pd.DataFrame:
    d = load_paper_values(paper, root)
    d = d[d["table"] == table]
    return d.pivot_table(index="row", columns="metric", values="value", aggfunc="first", sort=False)


def _rank(wide: pd.DataFrame, row: str, metric: str) -> int:
    return int(wide[metric].rank(ascending=not higher_is_better(metric), method="min")[row])


def _by_dataset(wide: pd.DataFrame) -> dict[str, pd.DataFrame]:
    out = {}
    for row in wide.index:
        method, _, dataset = row.rpartition("/")
        out.setdefault(dataset, {})[method] = wide.loc[row]
    return {k: pd.DataFrame(v).T for k, v in out.items()}


def internal_checks(root: str | Path | None = None) -> pd.DataFrame:
    """The papers' internal inconsistencies (X1–X13, cited in the ``internal`` column of the claims), each computed from
    ``reports/paper_values/``: ``id, paper, check, finding, consistent``."""
    rows = []

    def add(id_, paper, check, finding, consistent):
        rows.append({"id": id_, "paper": paper, "check": check, "finding": finding, "consistent": consistent})

    t1 = _by_dataset(_wide("dcmif", "Table 1", root))
    ranks = {(d, m): _rank(w, "Ours", m) for d, w in t1.items() for m in w.columns}
    worst = sorted(((r, d, m) for (d, m), r in ranks.items()), reverse=True)[:5]
    add("X1", "dcmif", "Table 1: DCMIF's rank among the 11 rows on each dataset and metric",
        f"first on {sum(r == 1 for r in ranks.values())} of {len(ranks)} cells; worst: "
        + ", ".join(f"{d} {m} {r}/{len(t1[d])}" for r, d, m in worst), all(r <= 3 for r in ranks.values()))

    t2 = _wide("dcmif", "Table 2", root)
    det = t2.loc[[r for r in t2.index if r.endswith("/M3FD")]]
    aps = det[[c for c in det.columns if c.startswith("AP ")]].mean(axis=1)
    off = (det["mAP"] - aps).abs()
    bad = off[off > 0.0005 + 1e-9]  # three printed decimals: the mean may round either way
    ours_rank = int(det["mAP"].rank(ascending=False, method="min")["Ours/M3FD"])
    mean_rank = int(pd.concat([det["mAP"].drop("Ours/M3FD"), pd.Series({"Ours/M3FD": aps["Ours/M3FD"]})]).rank(ascending=False, method="min")["Ours/M3FD"])
    seg = t2.loc[[r for r in t2.index if r.endswith("/FMB")]]
    differing = ", ".join(f"{r.split('/')[0]} mAP {det.at[r, 'mAP']:.3f} vs mean AP {aps[r]:.3f}" for r in bad.index)
    add("X2", "dcmif", "Table 2: each mAP against the mean of its six class APs; DCMIF's mAP and mIoU ranks",
        f"{len(bad)} of {len(det)} rows differ by > 0.0005 ({differing}); "
        f"DCMIF's mAP {det.at['Ours/M3FD', 'mAP']:.3f} ranks {ours_rank}/{len(det)}, the mean of its APs ({aps['Ours/M3FD']:.3f}) would rank {mean_rank}; "
        f"its mIoU ranks {int(seg['mIoU'].rank(ascending=False, method='min')['Ours/FMB'])}/{len(seg)} (best: {seg['mIoU'].idxmax().split('/')[0]} {seg['mIoU'].max():.3f})",
        len(bad) == 0)

    t7 = _wide("dcmif", "Table 7", root)
    e = t7.loc[[r for r in t7.index if r.startswith("E+")]]
    t8 = _by_dataset(_wide("dcmif", "Table 8", root)).get("FLIR")
    t9 = _by_dataset(_wide("dcmif", "Table 9", root)).get("FLIR")
    copied = [r for r in e.index if t8 is not None and r[2:] in t8.index and abs(t8.at[r[2:], "Qcb"] - e.at[r, "Qcb"]) < 5e-4]
    t5 = _wide("dcmif", "Table 5", root)
    add("X3", "dcmif", "Table 7: cost of the EGGAN pipelines against DCMIF; its Qcb column against Table 8's FLIR column; GFLOPs in Tables 5 and 7",
        f"every E+ pipeline has lower FLOPs ({e['FLOPs (G)'].min():.0f}–{e['FLOPs (G)'].max():.0f} G) and time "
        f"({e['Time (s)'].min():.3f}–{e['Time (s)'].max():.3f} s) than DCMIF ({t7.at['Ours', 'FLOPs (G)']:.3f} G, {t7.at['Ours', 'Time (s)']:.3f} s); "
        f"{len(copied)} of {len(e)} E+ Qcb values equal Table 8's FLIR Qcb; Table 5 N=1 GFLOPs {t5.at['N=1', 'GFLOPs']:.3f} vs Table 7 {t7.at['Ours', 'FLOPs (G)']:.3f}",
        False)

    findings, consistent = [], True
    for name in ("Table 8", "Table 9"):
        for d, w in _by_dataset(_wide("dcmif", name, root)).items():
            r = {m: _rank(w, "Ours", m) for m in w.columns}
            not_first = {m: v for m, v in r.items() if v > 1}
            consistent &= not not_first
            if not_first:
                findings.append(f"{name} {d}: " + ", ".join(f"{m} {v}/{len(w)}" for m, v in not_first.items()))
    add("X4", "dcmif", "Tables 8–9: is DCMIF first on every metric, as the text says?", "; ".join(findings) or "first everywhere", consistent)

    t1f = _by_dataset(_wide("dcmif", "Table 1", root))["FLIR"]
    same = [m for m in t9.index if m != "Ours" and m in t1f.index and t9.at[m, "CE"] == t1f.at[m, "CE"]]
    add("X5", "dcmif", "Table 9 (PID-generated IR) against Table 1 (real IR): FLIR CE of the baselines",
        f"{len(same)} of {len(t9.index) - 1} baselines have the identical FLIR CE in both tables", len(same) == 0)

    best_en = t5["EN"].idxmax()
    n2_better = [m for m in t5.columns if m != "GFLOPs" and ((t5.at["N=2", m] > t5.at["N=1", m]) == higher_is_better(m))]
    add("X6", "dcmif", "Table 5: is N = 1 best, N = 3 worse everywhere?",
        f"best EN: {best_en} ({t5.at[best_en, 'EN']:.3f}); N=2 beats N=1 on {len(n2_better)} of 6 metrics ({', '.join(n2_better)})",
        best_en == "N=1" and len(n2_better) == 0)

    findings = []
    for table, data in (("Table I", "MSRS"), ("Table II", "MSRS"), ("Table III", "M3FD"), ("Table IV", "M3FD"), ("Table V", "RoadScene"), ("Table VI", "RoadScene")):
        w = _wide("iassf", table, root)
        r = {m: _rank(w, "Ours", m) for m in w.columns}
        findings.append(f"{table} ({data}): first on {sum(v == 1 for v in r.values())}/{len(r)}"
                        + (f" ({', '.join(f'{m} {v}' for m, v in r.items() if v > 1)})" if any(v > 1 for v in r.values()) else ""))
    add("X7", "iassf", "Tables I–VI: IASSF's rank on each metric", "; ".join(findings), True)

    t7i = _wide("iassf", "Table VII", root)
    exceptions = [f"{row} {m} ({t7i.at[row, m]:.3f} vs {t7i.at['Ours', m]:.3f})" for row in t7i.index if row != "Ours"
                  for m in t7i.columns if pd.notna(t7i.at[row, m]) and ((t7i.at[row, m] > t7i.at["Ours", m]) == higher_is_better(m))
                  and t7i.at[row, m] != t7i.at["Ours", m]]
    add("X8", "iassf", "Table VII: does removing any component lower every metric?",
        f"{len(exceptions)} exception(s): {', '.join(exceptions) or 'none'}", not exceptions)

    findings = []
    for table in ("Table VIII", "Table IX"):
        w = _wide("iassf", table, root)
        winners = {m: w[m].idxmax() if higher_is_better(m) else w[m].idxmin() for m in w.columns}
        counts = pd.Series(winners).value_counts()
        findings.append(f"{table}: " + ", ".join(f"{k} best on {v}" for k, v in counts.items()))
    add("X9", "iassf", "Tables VIII–IX: is there one best α and one best M?", "; ".join(findings), False)

    l1, l4 = _wide("ldfusion", "Table 1", root), _wide("ldfusion", "Table 4", root)
    ld4 = l4.loc[[r for r in l4.index if r.startswith("LDFusion/")]]
    match = [r for r in ld4.index if (ld4.loc[r, l1.columns] - l1.loc["LDFusion"]).abs().max() < 5e-4]
    add("X10", "ldfusion", "Table 1's LDFusion row against Table 4's three LDFusion rows and their mean",
        f"matches {len(match)} of {len(ld4)} rows; Table 1 EN {l1.at['LDFusion', 'EN']:.3f}, SD {l1.at['LDFusion', 'SD']:.3f}; "
        f"mean of Table 4 EN {ld4['EN'].mean():.3f}, SD {ld4['SD'].mean():.3f}", bool(match))

    l3 = _wide("ldfusion", "Table 3", root)
    l2, l5 = _wide("ldfusion", "Table 2", root), _wide("ldfusion", "Table 5", root)
    cc = {d: int(w["CC"].rank(ascending=False, method="min")["LDFusion"]) for d, w in _by_dataset(l4).items()}
    same3 = all((l3.loc[f"LDFusion/{d}"] - l4.loc[f"LDFusion/{d}", l3.columns]).abs().max() < 5e-4 for d in ("TNO", "RoadScene"))
    same25 = (abs(l2.at["LDFusion/All", "mAP@0.5"] - l5.at["LDFusion", "mAP@0.5"]) < 5e-4
              and abs(l2.at["LDFusion/All", "mAP@0.5:0.95"] - l5.at["LDFusion", "mAP@0.5:0.95"]) < 5e-4)
    first = {d: sum(int(w[m].rank(ascending=False, method="min")["LDFusion"]) == 1 for m in w.columns) for d, w in _by_dataset(l4).items()}
    add("X11", "ldfusion", "Table 4: LDFusion's CC rank; Table 3 vs Table 4; Table 2 vs Table 5",
        f"CC rank per set: {', '.join(f'{d} {r}' for d, r in cc.items())}; first on {', '.join(f'{d} {v}/5' for d, v in first.items())}; "
        f"Table 3's LDFusion rows equal Table 4's: {same3}; Table 2's 'All' equals Table 5: {same25}",
        same3 and same25 and all(v >= 4 for v in first.values()))  # "almost all" metrics: all but one per set

    methods4 = sorted({r.rpartition("/")[0] for r in l4.index} - {"LDFusion"})
    add("X12", "ldfusion", "§4.1 says 11 compared methods: how many does Table 4 list?",
        f"{len(methods4)} ({', '.join(methods4)}); the α/λ swap between §4.1 and Eqs. 10/16 is a text inconsistency no table value bears on",
        len(methods4) == 11)

    lv = load_paper_values("lrcfuse", root)
    datasets = sorted({t for t in lv["table"] if t in ("Table 6", "Table 7", "Table 8")})
    msrs = lv[(lv["table"] == "Training") & lv["row"].str.startswith("MSRS pairs")]["value"]
    add("X13", "lrcfuse", "LRCFuse: datasets in the conclusion's MI gains; the MSRS pair count",
        f"the MI gains come from {len(datasets)} tables ({', '.join(datasets)}: TNO, RoadScene, M3FD) where the conclusion says 'two' datasets; "
        f"training on {int(msrs.iloc[0]) if len(msrs) else '?'} MSRS pairs = MSRS train (1,083) + test (361)", False)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ how small our runs are

# paper -> the artefact whose provenance records its main model's training recipe
TRAINING_ARTEFACT = {"dcmif": "dcmif/training_log.csv", "iassf": "iassf/training.csv", "ldfusion": "ldfusion/training.csv",
                     "lrcfuse": "lrcfuse/fig17_loss.csv"}
# paper -> the artefact whose provenance says which images its paper tables were scored on
SCORED_ARTEFACT = {"dcmif": "dcmif/table1.csv", "iassf": "iassf/table_i.csv", "ldfusion": "ldfusion/table1.csv",
                   "lrcfuse": "lrcfuse/table6_tno.csv"}
# a checkpoint trained by another notebook than its paper's tables (its manifest command names it): its training artefact
TRAINING_ARTEFACT_OF_NOTEBOOK = {"42_": "ldfusion/twin_run_log.csv"}
TRAIN_SPLIT = ("msrs", "train")  # where a training artefact's provenance names no dataset: the split the notebooks default to


def paper_recipe(paper: str, root: str | Path | None = None) -> dict:
    """The paper's training recipe from ``reports/paper_values/`` (tables "Recipe", and LRCFuse's
    "Training"): ``images`` (crops seen: epochs × training pairs or patches, summed over stages),
    ``crop`` (side) and ``text``."""
    v = load_paper_values(paper, root)
    r = v[v["table"] == "Recipe"].set_index("metric")["value"]
    crop = int(r["crop side"])
    if paper == "dcmif":
        pairs = int(r["training pairs"])
        images = int(r["JSRL epochs"]) * pairs + 2 * int(r["VGII and AFRI epochs"]) * pairs
        text = (f"JSRL {int(r['JSRL epochs']):,} epochs (batch {int(r['JSRL batch size'])}) + VGII and AFRI "
                f"{int(r['VGII and AFRI epochs'])} epochs each (batch {int(r['VGII and AFRI batch size'])}) of {pairs:,} pairs")
    elif paper == "lrcfuse":
        t = v[v["table"] == "Training"].set_index("row")["value"]
        patches, epochs = int(t["patches used: count"]), int(t["epochs: count"])
        images = patches * epochs
        text = f"{epochs} epochs of {patches:,} patches (batch {int(t['batch size: count'])}) cut from {int(t['MSRS pairs: count']):,} pairs"
    else:
        pairs, epochs = int(r["training pairs"]), int(r["epochs"])
        images = pairs * epochs
        text = f"{epochs} epochs of {pairs:,} pairs (batch {int(r['batch size'])})"
    return {"images": images, "crop": crop, "text": f"{text}, {crop}² crops"}


def _batch(params: dict) -> float | None:
    if "batch_size" in params:
        return float(params["batch_size"])
    if "config" in params:
        return float(params["config"]["batch_size"])
    if "configs" in params:  # DCMIF: one per stage
        sizes = [c["batch_size"] for c in params["configs"].values()]
        return sum(sizes) / len(sizes)
    return None


def run_scale(entries, root: str | Path | None = None, health: pd.DataFrame | None = None) -> pd.DataFrame:
    """What each checkpoint saw against its paper's recipe: training pairs, steps, batch, crop, crops
    seen (steps × batch), the paper's crops seen and the fraction (also weighted by crop area), the
    loss network, and whether the model is alive (``health``)."""
    from fusionlib.benchmark import SETS
    from fusionlib.data import find_pairs, split_dir
    names = {folder: name for name, (folder, _, _) in SETS.items()}
    root = Path(root or reports_root())
    alive = {} if health is None else dict(zip(health["checkpoint"], zip(health["alive"], health["why"], health["evaluated_by"])))
    rows = []
    for e in entries:
        artefact = TRAINING_ARTEFACT_OF_NOTEBOOK.get(e.notebook, TRAINING_ARTEFACT[e.paper])
        params = run_parameters(artefact, e.profile, root)
        batch, crop = _batch(params), params.get("crop", params.get("patch_size"))
        # the training split: a dataset name (notebook 42), a dataset's train folder the notebook trained on (41: ".../msrs/train"),
        # else the default (IASSF's is a cache folder of hazed MSRS train pairs)
        train = Path(params.get("train") or "")
        dataset = params.get("dataset") or (train.parent.name if train.name == "train" and train.parent.name in names else TRAIN_SPLIT[0])
        folder = split_dir(dataset, "train")
        pairs = len(find_pairs(folder)) if folder.is_dir() else math.nan
        seen = e.steps * batch if batch else math.nan
        recipe = paper_recipe(e.paper, root)
        if e.paper == "lrcfuse" and e.variant != "main":  # LRRNet's own recipe is not transcribed: LRCFuse's, its successor's
            recipe["text"] = "LRCFuse's (LRRNet's own is not transcribed): " + recipe["text"]
        state = alive.get(e.name, ("", "", ""))
        rows.append({"paper": e.paper, "variant": e.variant, "checkpoint": e.name, "profile": e.profile,
                     "training set": names.get(dataset, dataset), "training pairs": pairs,
                     "steps": e.steps, "batch": batch, "crop": crop, "crops seen": seen,
                     "paper recipe": recipe["text"], "paper crops seen": recipe["images"],
                     "fraction (%)": seen / recipe["images"] * 100,
                     "fraction of pixels (%)": seen * (crop or math.nan) ** 2 / (recipe["images"] * recipe["crop"] ** 2) * 100,
                     "loss network": e.loss_network, "alive": state[0], "why": state[1], "evaluated_by": state[2]})
    return pd.DataFrame(rows)


def scored_on(paper: str, root: Path, profiles=PROFILE_ORDER) -> str:
    """Which images a paper's tables were scored on, from the provenance of its main table."""
    ev = find_evidence(SCORED_ARTEFACT[paper], root, profiles)
    if ev is None:
        return "no table committed yet"
    p = run_parameters(SCORED_ARTEFACT[paper], ev.profile, root)
    n, crop = p.get("n_images"), p.get("eval_crop")
    sets = ", ".join(p.get("eval_datasets", [])) or "?"
    msrs = f" (MSRS: {p['msrs_images']})" if p.get("msrs_images") else ""
    return (f"{'all' if not n else n} test pair{'s' * (n != 1)} per set of {sets}{msrs}, "
            f"{'whole images' if not crop else f'{crop}² centre crops'} ({ev.profile} profile, {ev.artefact} and its siblings)")


# ------------------------------------------------------------------ the reproduction report

PAPER_TITLES = {"dcmif": "DCMIF — dictionary-guided fusion with the infrared image missing",
                "lrcfuse": "LRCFuse — low-rank representation + convolutional sparse coding",
                "iassf": "IASSF — joint dehazing and fusion with prompts",
                "ldfusion": "LDFusion — a CLIP language-driven fusion loss"}
PAPER_NOTEBOOKS = {"lrcfuse": ("10_", "11_", "12_", "13_"), "dcmif": ("20_", "21_", "22_", "23_"), "iassf": ("30_", "31_", "32_", "33_"),
                   "ldfusion": ("40_", "41_", "42_")}


def _num(value, fmt: str, unit: str = "") -> str:
    """A number of the run-scale table, or "—" where the artefact that held it is gone (a superseded run)."""
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:{fmt}}{unit}"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _why_not(r, scale: pd.DataFrame) -> str:
    """The most likely reason a claim did not reproduce or stayed unresolved, in words, from what the
    ledger found (a dead model, a weightless term, the noise floor, a test without power) and how much
    of the paper's recipe the checkpoint it rests on saw."""
    from fusionlib.health import parse_models
    note = str(r.note)
    budget = ""
    for model, _ in parse_models(getattr(r, "model", "")):
        paper, _, variant = model.partition(":")
        own = scale[(scale["paper"] == paper) & (scale["variant"] == variant)]
        by_notebook = own[own["evaluated_by"] == "paper notebook"] if "evaluated_by" in own else own.iloc[:0]
        # the row the paper notebook evaluated (fusionlib.health); without health, the first that is not a -regen copy
        own = by_notebook if len(by_notebook) else own[~own["checkpoint"].str.endswith("-regen")]
        if len(own):
            e = own.iloc[0]
            budget = (f"`{e['checkpoint']}` saw {_num(e['crops seen'], ',.0f')} crops of {_num(e['crop'], 'g', '²')} from "
                      f"{_num(e['training pairs'], '.0f')} {e['training set']} pairs, "
                      f"{e['fraction (%)']:.2g} % of the crops of the paper's recipe ({e['paper recipe']}) and "
                      f"{e['fraction of pixels (%)']:.2g} % of its pixels")
            if not str(e["loss network"]).startswith("none"):
                budget += f"; loss network: {e['loss network']}"
    if r.verdict == "unresolved":
        if "which is not alive" in note:
            cause = ("a dead model: the checkpoint it rests on fails the health checks (claims/health.csv), so no output "
                     "of it can confirm or refute the claim")
        elif "carry no weight" in note:
            cause = ("a stand-in: with our loss network the terms the claim is about carry almost none of the loss, "
                     "so changing their weights changes nothing")
        elif "noise floor" in note:
            cause = "budget: the differences lie inside the spread of repeated seeds of our short runs" + (
                ", and some values are implausible for natural images" if "plausible range" in note else "")
        elif "pairs" in note:
            cause = "too few images: the paired tests over the images we scored cannot or did not reach significance"
        else:
            cause = "our evidence cannot decide it (see what was measured)"
    elif str(r.profile) == "paper values":
        cause = "the paper itself: its own numbers disagree (computed from the transcribed values)"
    elif str(r.profile) == "code":
        cause = "the architecture as built: a count of our code, not a training result"
    elif budget:
        cause = ("budget" + (" and a stand-in loss network" if "loss network" in budget else "")
                 + ": a model trained on a small fraction of the paper's data and steps")
    else:
        cause = "what we can measure here differs from the paper's setting (see the criterion)"
    show = budget and (r.verdict != "unresolved" or cause.startswith(("a dead model", "budget")))
    return f"most likely {cause}" + (f" ({budget})" if show else "")


def reproduction_report(profile: str, root: str | Path | None = None, *, base: str = "",
                        claims: pd.DataFrame | None = None, manifest_rows: list | None = None,
                        health: pd.DataFrame | None = None) -> str:
    """``REPORT.md``: per paper, a reproducibility report (scope, the scale of our runs against the
    paper's recipe, what we ran, results, what reproduced, what did not and why in words, what a user
    with more data, weights or GPUs should run), then the benchmark, every number linked to the
    artefact it comes from.

    Args:
        profile: the profile of the run that writes the report (its header says so); evidence comes
            from the best profile that has it, as in :func:`find_evidence`.
        root: the reports root.
        base: prefix that turns an artefact path (relative to the reports root) into a link from
            where the report is written ("" for ``reports/REPORT.md``, "../" for ``reports/<profile>/``).
        claims: the claims table (default :func:`load_claims`).
        manifest_rows: checkpoint manifest entries (default: :func:`fusionlib.checkpoints.manifest`).
        health: :func:`all_health` (default: computed).
    """
    from fusionlib import checkpoints
    root = Path(root or reports_root())
    order = PROFILE_ORDER  # the best evidence first, whichever profile writes the report
    claims = load_claims(root / "claims" / "claims.csv") if claims is None else claims
    health = all_health(claims, root) if health is None else health
    led = ledger(claims, root, order, health)
    internal = internal_checks(root).set_index("id")
    entries = list(checkpoints.manifest().values()) if manifest_rows is None else manifest_rows
    scale = run_scale(entries, root, health) if entries else pd.DataFrame(columns=["paper", "checkpoint"])
    # a committed report counts committed artefacts only: smoke's index is local and regenerated each run
    index = [r for r in read_index(root) if r["profile"] != "smoke" or profile == "smoke"]

    def link(artefact: str, label: str | None = None) -> str:
        if not artefact:
            return "—"
        if artefact.startswith("../"):
            return f"[{label or artefact[3:]}]({base}{artefact})"
        return f"[{label or artefact}]({base}{artefact})"

    ev_ledger = find_evidence("claims/ledger.csv", root, order)
    ev_health = find_evidence("claims/health.csv", root, order)
    out = ["# Reproduction report", "",
           f"Generated by `notebooks/92_report.ipynb` from the claims ledger "
           f"({link(ev_ledger.artefact) if ev_ledger else 'notebook 90 not run yet'}), the health of every trained model "
           f"({link(ev_health.artefact) if ev_health else 'notebook 90 not run yet'}) and the benchmark "
           f"(notebook 91), written by the `{profile}` run; each artefact comes from the best profile that has it "
           "(full, gpu, cpu, then smoke) and says which. Every verdict is computed "
           "(`fusionlib.ledger`); every number links to the artefact it comes from.", ""]
    if len(scale):
        lo, hi = scale["fraction (%)"].min(), scale["fraction (%)"].max()
        sets = " or ".join(f"{_num(n, '.0f')} {ds}" for ds, n in scale.groupby("training set", sort=False)["training pairs"].max().items())
        out += [f"**How small our runs are.** Every model here was trained on {sets} pairs "
                f"for minutes on a CPU: between {lo:.2g} % and {hi:.2g} % of the crops its paper's recipe shows the network "
                "(the per-paper tables below), with stand-ins where a loss network is not available offline. A verdict on "
                "such a model says what this budget gives, not what the paper's recipe gives; a model that fails the "
                "health checks carries no verdict at all (*unresolved*).", ""]
    counts = pd.crosstab(led["paper"], led["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    out += ["## Summary", "", "| paper | claims | " + " | ".join(VERDICTS) + " |", "|---|---:|" + "---:|" * len(VERDICTS)]
    for paper in PAPER_TITLES:
        if paper in counts.index:
            out.append(f"| {paper} | {int(counts.loc[paper].sum())} | " + " | ".join(str(int(counts.loc[paper, v])) for v in VERDICTS) + " |")
    out.append(f"| all | {len(led)} | " + " | ".join(str(int((led['verdict'] == v).sum())) for v in VERDICTS) + " |")
    out.append("")
    for paper, title in PAPER_TITLES.items():
        g = led[led["paper"] == paper]
        if not len(g):
            continue
        runs = [e for e in entries if e.paper == paper]
        mine_scale = scale[scale["paper"] == paper]
        artefacts = [r for r in index if r["paper"] == paper]
        profiles = sorted({r["profile"] for r in artefacts})
        out += [f"## {title}", "", "**Scope.** " + f"{len(g)} claims ({(g['testable'].str.startswith('yes')).sum()} marked testable here, "
                f"{(g['testable'].str.startswith('partly')).sum()} partly, {(g['testable'].str.startswith('no')).sum()} not; "
                "[claims.csv](" + base + "claims/claims.csv)). Notebooks: " + ", ".join(f"`{n}`" for n in PAPER_NOTEBOOKS[paper]) + ".", ""]
        if len(mine_scale):
            out += ["**The scale of our runs** (crops seen = steps × batch; the paper's recipe from "
                    + link(f"paper_values/{paper}.csv", f"paper_values/{paper}.csv") + ", table Recipe):", "",
                    "| checkpoint | trained on | steps × batch | crop | crops seen | the paper's recipe | fraction of its crops | of its pixels | loss network | alive |",
                    "|---|---|---:|---:|---:|---|---:|---:|---|---|"]
            for _, e in mine_scale.iterrows():
                alive = e["alive"] or "—"
                if alive == "no":
                    alive = f"**no**: {_cell(e['why'])}"
                out.append(f"| `{e['checkpoint']}` | {_num(e['training pairs'], '.0f')} {e['training set']} pairs | "
                           f"{e['steps']} × {_num(e['batch'], 'g')} | {_num(e['crop'], 'g', '²')} | {_num(e['crops seen'], ',.0f')} | "
                           f"{_cell(e['paper recipe'])} | {_num(e['fraction (%)'], '.2g', ' %')} | "
                           f"{_num(e['fraction of pixels (%)'], '.2g', ' %')} | {_cell(e['loss network'])} | {alive} |")
            out += ["", f"**Scored on.** {scored_on(paper, root, order)}.", ""]
        out += ["**What we ran.** " + ("; ".join(f"checkpoint `{e.name}` ({e.steps} steps, {e.profile} profile on {e.device}, "
                                                  f"{float(e.wall_seconds) / 60:.1f} min)"
                                                  if str(e.wall_seconds) not in ("nan", "") else
                                                  f"checkpoint `{e.name}` ({e.steps} steps, {e.profile} profile on {e.device})"
                                                  for e in runs) or "no trained checkpoint")
                + (f" (each checkpoint's command, commit, data checksum and SHA-256: {link('../checkpoints/MANIFEST.csv')})" if runs else "")
                + f"; {len(artefacts)} artefacts in the profiles {', '.join(profiles) or 'none'}.", ""]
        out += ["**Results.**", "", "| claim | verdict | evidence | what we measured / why not |", "|---|---|---|---|"]
        for r in g.itertuples():
            out.append(f"| {r.id}: {_cell(r.claim)} ({_cell(r.where)}) | **{r.verdict}** | {link(r.evidence)} | {_cell(r.note)} |")
        out.append("")
        ok = g[g["verdict"].isin(["holds", "partly holds"])]
        bad = g[g["verdict"].isin(["does not hold", "unresolved"])]
        todo = g[g["verdict"] == "not testable here"]
        out += ["**What reproduced.** " + ("; ".join(f"{r.id} ({r.verdict})" for r in ok.itertuples()) or "nothing yet") + ".", ""]
        out += ["**What did not reproduce or stayed unresolved, and why.**" + ("" if len(bad) else " Nothing."), ""]
        out += [f"- **{r.id}** ({r.verdict}): {_cell(r.claim)}. Measured: {_cell(r.note)}. The reason: {_why_not(r, scale)}."
                for r in bad.itertuples()]
        out += ["", "**What a user with more data, weights or GPUs should run.**" + ("" if len(todo) else " Nothing."), ""]
        out += [f"- **{r.id}**: {_cell(r.note)}" for r in todo.itertuples()]
        out.append("")
        mine = internal[internal["paper"] == paper]
        if len(mine):
            out += ["**The paper's internal consistency** (computed from "
                    + link(f"paper_values/{paper}.csv", f"paper_values/{paper}.csv") + "):", ""]
            out += [f"- {i} ({'consistent' if r.consistent else 'inconsistent'}): {r.check}: {r.finding}" for i, r in mine.iterrows()]
            out.append("")
    out += _benchmark_section(root, order, link)
    return "\n".join(out) + "\n"


def _benchmark_section(root: Path, order, link) -> list[str]:
    summ = find_evidence("benchmark/summary.csv", root, order)
    if summ is None:
        return ["## Benchmark", "", "Not run yet: `make reproduce ONLY=91_` (or `PROFILE=cpu`).", ""]
    s = pd.read_csv(summ.path)
    prof = summ.profile

    def also(name: str, label: str) -> str:  # a link to a sibling artefact, only where it exists
        ev = find_evidence(f"benchmark/{name}", root, (prof,))
        return f", {label}: {link(ev.artefact)}" if ev else ""
    out = ["## Benchmark: every method on the same images", "",
           f"From the `{prof}` profile ({link(summ.artefact)}{also('methods.csv', 'methods')}"
           f"{also('missing_methods.csv', 'missing methods')}{also('sets.csv', 'sets')}). "
           "Mean [95 % bootstrap CI] under the VIFB convention, per set, for five metrics:", ""]
    headline = ["EN", "SD", "MI", "Qabf", "VIF"]
    v = s[(s["scoring"] == "vifb") & s["metric"].isin(headline)]
    for set_name, g in v.groupby("set", sort=False):
        n = int(g["n"].max())
        out += [f"**{set_name}** ({n} images)", "", "| method | " + " | ".join(headline) + " |", "|---|" + "---:|" * len(headline)]
        for method, h in g.groupby("method", sort=False):
            cells = []
            for m in headline:
                r = h[h["metric"] == m]
                cells.append("—" if not len(r) or pd.isna(r["mean"].iloc[0]) else
                             f"{r['mean'].iloc[0]:.3f} [{r['ci_low'].iloc[0]:.3f}, {r['ci_high'].iloc[0]:.3f}]")
            out.append(f"| {_cell(method)} | " + " | ".join(cells) + " |")
        out.append("")
    wins = find_evidence("benchmark/wins.csv", root, (prof,))
    if wins is not None:
        w = pd.read_csv(wins.path)
        if "total" in w.columns:
            out += [f"Significant pairwise wins (paired Wilcoxon, Holm-corrected, VIFB convention; {link(wins.artefact)}"
                    f"{also('pairwise.csv', 'every test')}): "
                    + ", ".join(f"{_cell(r[w.columns[0]])} {int(r['total'])}" for _, r in w.head(6).iterrows()) + "."]
            left = find_evidence("benchmark/wins_not_counted.csv", root, (prof,))
            if left is not None and len(lo := pd.read_csv(left.path)):
                out[-1] += (f" Not counted, for either side of a test, because their model is not alive ({link(left.artefact)}): "
                            + ", ".join(_cell(m) for m in lo["method"]) + ".")
            out.append("")
        else:
            out += [f"Paired tests: {w.iloc[0, 0]} ({link(wins.artefact)}).", ""]
    lesson = find_evidence("benchmark/conformance_lesson.csv", root, (prof,))
    if lesson is not None:
        out += ["**Metric conformance.** " + pd.read_csv(lesson.path)["lesson"].iloc[0]
                + f" ({link(lesson.artefact)}{also('conformance_matrix.csv', 'matrix')}{also('conformance.png', 'figure')}"
                + f"{also('conformance.csv', 'every comparison')})", ""]
    cx = find_evidence("benchmark/complexity.csv", root, (prof,))
    if cx is not None:
        c = pd.read_csv(cx.path)
        lat = [col for col in c.columns if col.startswith("latency")]
        flops = [col for col in c.columns if col.startswith("GFLOPs")]
        out += [f"**Complexity on one device** ({link(cx.artefact)}):", "",
                "| method | Params (M) | " + " | ".join(flops + lat) + " |", "|---|---:|" + "---:|" * len(flops + lat)]
        for _, r in c.iterrows():
            out.append(f"| {_cell(r['method'])} | {r['Params (M)']:.3f} | " + " | ".join(f"{r[col]:.3g}" for col in flops + lat) + " |")
        out.append("")
    return out
