"""Verdicts on a paper's numeric claims, computed from our tables (never typed by hand).

A claim is a row of ``fusionlib/<paper>/paper_values.csv`` (:func:`fusionlib.study.reports.load_paper_values`)
whose ``row`` says what kind of statement it is:

- ``"<setting>: gain over the second best (%)"`` / ``"<setting>: gain over <other> (%)"``: the
  setting is best on the metric and beats the runner-up (or ``other``) by ``value`` %;
- ``"<setting>: rank"``: the setting ranks ``value`` (1 = best) among the rows compared;
- ``"<setting>: metrics ranked first"`` / ``"... second"`` (metric ``count``): on how many of the
  table's metrics it ranks there;
- ``"<setting>: converge within"`` (metric ``iterations``): our row's ``iterations`` is at most the value;
- ``"<setting>: count"`` (metric ``count``): our row's ``count`` equals the value (a stated quantity
  we can recompute, e.g. a patch count from the stated grid);
- ``"<setting>"`` alone (a plain table value, e.g. Table 9's parameter count): ours, rounded to the
  decimals the paper printed, equals it.

:func:`judge` measures each claim's counterpart on our table, with the sign, and gives a verdict:
``holds`` (the direction the paper states: best / the stated rank / at least the stated count),
(a gain over a denominator within noise of 0 is given as a difference, not a percentage),
``does not hold``, or ``not measurable here`` with the reason. Where a noise floor is given (the
spread of the same configuration over seeds), a gain smaller than it is flagged, and so is a rank or
a first place whose closest competitor lies within it: the ordering is then not resolved by our runs,
whatever its sign.
"""

from __future__ import annotations

import math

import pandas as pd

from fusionlib.metrics import METRICS, PLAUSIBLE, higher_is_better

__all__ = ["VERDICTS", "judge", "paired_p", "MIN_PAIRS"]

VERDICTS = ("holds", "does not hold", "not measurable here")


MIN_PAIRS = 6  # with 5 pairs the smallest two-sided Wilcoxon p is 0.0625: no test at 0.05 is possible


def paired_p(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p of ``a − b`` over paired observations (e.g. one metric of
    two methods on the same images; index order pairs them, NaN pairs are dropped). NaN with fewer
    than :data:`MIN_PAIRS` pairs or when every difference is zero: no test is possible, which the
    caller must say rather than read as "no difference"."""
    from scipy.stats import wilcoxon
    d = (pd.Series(a, dtype=float).reset_index(drop=True) - pd.Series(b, dtype=float).reset_index(drop=True)).dropna()
    return float(wilcoxon(d).pvalue) if len(d) >= MIN_PAIRS and (d != 0).any() else math.nan


def _near_zero(metric: str) -> float:
    """A denominator this close to 0 makes a relative gain meaningless when no noise floor is
    given: 0.1 % of the metric's plausible span (:data:`fusionlib.metrics.PLAUSIBLE`), else 1e-9."""
    lo, hi = PLAUSIBLE.get(metric, (0.0, 1e-6))
    return 1e-3 * (hi - lo)


def _ranks(ours: pd.DataFrame, metric: str) -> pd.Series:
    return ours[metric].rank(ascending=not higher_is_better(metric), method="min")


def _closest_gap(ours: pd.DataFrame, label: str, metric: str) -> float:
    """|Δ| between ``label`` and the nearest other row on ``metric``: below the noise floor, its place
    could swap with that row's under another seed."""
    rest = ours.drop(index=label)[metric].astype(float)
    return float((rest - float(ours.at[label, metric])).abs().min()) if len(rest) else math.inf


def judge(claims: pd.DataFrame, ours: pd.DataFrame, rows: dict[str, str], *,
          noise: dict[str, float] | None = None, why_not: dict[str, str] | None = None) -> pd.DataFrame:
    """One verdict per claim.

    Args:
        claims: paper-value rows (columns ``table, row, metric, value, source``) of one table.
        ours: our table, index = our row labels (methods or settings), columns = metrics.
        rows: claim setting (the part of ``row`` before ``": "``) -> our row label.
        noise: metric -> the noise floor (e.g. the standard deviation over seeds); differences
            smaller than it are flagged as not resolved.
        why_not: claim setting, or ``(setting, metric)``, -> why it cannot be measured here
            (overrides everything).

    Returns:
        Columns ``table, claim, metric, paper, ours, verdict, note``: ``ours`` is the measured
        counterpart (a gain in %, a rank, a count), ``note`` says against what and any flag.
    """
    out = []
    for c in claims.itertuples(index=False):
        setting, _, kind = c.row.partition(": ")
        measured, verdict, note = math.nan, "not measurable here", ""
        label = rows.get(setting)
        reason = (why_not or {}).get((setting, c.metric), (why_not or {}).get(setting))
        if reason:
            note = reason
        elif label is None or label not in ours.index:
            note = f"no row for {setting!r} in our table"
        elif c.metric not in ("count", "iterations") and c.metric not in ours.columns:
            note = f"{c.metric} is not in our table"
        elif kind.startswith("gain over"):
            other = kind[len("gain over "):].removesuffix(" (%)")
            if other == "the second best":
                rest = ours.drop(index=label)[c.metric]
                ref_label = rest.idxmax() if higher_is_better(c.metric) else rest.idxmin()
            else:
                ref_label = rows.get(other, other)
            if ref_label not in ours.index:
                note = f"no row for {other!r} in our table"
            else:
                x, ref = float(ours.at[label, c.metric]), float(ours.at[ref_label, c.metric])
                floor = (noise or {}).get(c.metric)
                near_zero = floor if floor is not None else _near_zero(c.metric)
                verdict = "holds" if (x - ref) * c.value > 0 else "does not hold"
                note = f"against {ref_label}"
                if abs(ref) <= near_zero:  # a percentage of (almost) nothing: report the difference instead
                    note += (f"; its {c.metric} {ref:.3g} is within noise of 0 (≤ {near_zero:.3g}): the gain is not a "
                             f"percentage, Δ = {x - ref:.3g}")
                else:
                    measured = (x - ref) / abs(ref) * 100
                if floor is not None and abs(x - ref) < floor:
                    note += f"; inside the noise floor (|Δ| = {abs(x - ref):.3g} < {floor:.3g}): not resolved"
        elif kind == "rank":
            measured = float(_ranks(ours, c.metric)[label])
            verdict = "holds" if measured == c.value else "does not hold"
            note = f"among {len(ours)} rows"
            gap = _closest_gap(ours, label, c.metric)
            floor = (noise or {}).get(c.metric)
            if floor is not None and gap < floor:
                note += f"; the closest row is inside the noise floor (|Δ| = {gap:.3g} < {floor:.3g}): not resolved"
        elif kind.startswith("metrics ranked"):
            place = {"first": 1, "second": 2}[kind.rsplit(" ", 1)[1]]
            metrics = [m for m in ours.columns if m in METRICS]
            if place == 2 and len(ours) < 3:
                note = f"we compare {len(ours)} settings, the paper more: 'second' only means 'not first'"
            else:
                measured = float(sum(_ranks(ours, m)[label] == place for m in metrics))
                verdict = "holds" if measured >= c.value else "does not hold"
                note = f"of {len(metrics)} metrics, among {len(ours)} settings"
                unresolved = [m for m in metrics if m in (noise or {}) and _closest_gap(ours, label, m) < noise[m]]
                if unresolved:
                    note += (f"; {len(unresolved)} of them inside the noise floor ({', '.join(unresolved)}): "
                             "those places are not resolved")
        elif kind == "":
            decimals = len(repr(float(c.value)).split(".")[1].rstrip("0"))
            measured = float(ours.at[label, c.metric])
            verdict = "holds" if round(measured, decimals) == round(float(c.value), decimals) else "does not hold"
            note = f"ours rounded to the paper's {decimals} decimal(s)"
        elif kind in ("converge within", "count"):
            column = c.metric
            if column not in ours.columns or pd.isna(ours.at[label, column]):
                note = f"no {column} measured for {label!r}"
            else:
                measured = float(ours.at[label, column])
                ok = measured <= c.value if kind == "converge within" else measured == c.value
                verdict = "holds" if ok else "does not hold"
                note = f"{label}"
        else:
            raise ValueError(f"unknown claim kind {kind!r} in {c.table} / {c.row}")
        out.append({"table": c.table, "claim": c.row, "metric": c.metric, "paper": c.value, "ours": measured,
                    "verdict": verdict, "note": note})
    return pd.DataFrame(out, columns=["table", "claim", "metric", "paper", "ours", "verdict", "note"])
