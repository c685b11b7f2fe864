"""fusionlib.study.verdicts: verdicts computed from a table, for every kind of claim row, with their signs."""

import math

import pandas as pd
import pytest

from fusionlib.study.verdicts import judge


def claims(*rows):
    return pd.DataFrame([(t, r, m, v, "src") for t, r, m, v in rows], columns=["table", "row", "metric", "value", "source"])


OURS = pd.DataFrame({"MI": [3.0, 2.0, 2.5], "Nabf": [0.10, 0.05, 0.20], "SSIM": [0.70, 0.72, 0.60]},
                    index=["ours", "b", "c"])


def test_gain_over_second_best_has_the_right_sign_for_both_directions():
    out = judge(claims(("T", "X: gain over the second best (%)", "MI", 26.5),
                       ("T", "X: gain over the second best (%)", "Nabf", -22.5),
                       ("T", "X: gain over the second best (%)", "SSIM", 1.0)), OURS, {"X": "ours"})
    assert out["ours"].tolist() == pytest.approx([20.0, 100.0, (0.70 - 0.72) / 0.72 * 100])
    assert out["verdict"].tolist() == ["holds", "does not hold", "does not hold"]  # Nabf: ours is twice b's (worse)
    assert out["note"].tolist() == ["against c", "against b", "against b"]


def test_gain_over_a_named_row_with_a_noise_floor():
    out = judge(claims(("T", "X: gain over off (%)", "MI", 40.0)), OURS, {"X": "ours", "off": "c"}, noise={"MI": 0.6})
    assert out.loc[0, "ours"] == pytest.approx(20.0) and out.loc[0, "verdict"] == "holds"
    assert "inside the noise floor" in out.loc[0, "note"]


def test_rank_and_counts():
    out = judge(claims(("T", "b: rank", "Nabf", 1), ("T", "b: rank", "MI", 1),
                       ("T", "ours: metrics ranked first", "count", 1),
                       ("T", "ours: metrics ranked second", "count", 3)), OURS, {"b": "b", "ours": "ours"})
    assert out["ours"].tolist() == [1.0, 3.0, 1.0, 2.0]
    assert out["verdict"].tolist() == ["holds", "does not hold", "holds", "does not hold"]


def test_ranks_and_first_places_closer_than_the_noise_floor_are_flagged():
    # MI: ours 3.0 vs the closest other (c) 2.5: flagged under a floor of 0.6, not under 0.4.
    # SSIM: ours 0.70 vs b 0.72: a floor of 0.05 leaves that place unresolved too.
    rows = claims(("T", "ours: rank", "MI", 1), ("T", "ours: metrics ranked first", "count", 1))
    wide = judge(rows, OURS, {"ours": "ours"}, noise={"MI": 0.6, "SSIM": 0.05})
    assert wide["verdict"].tolist() == ["holds", "holds"]
    assert "closest row is inside the noise floor (|Δ| = 0.5 < 0.6)" in wide.loc[0, "note"]
    assert wide.loc[1, "note"].endswith("2 of them inside the noise floor (MI, SSIM): those places are not resolved")
    narrow = judge(rows, OURS, {"ours": "ours"}, noise={"MI": 0.4})
    assert "noise floor" not in " ".join(narrow["note"])


def test_second_place_is_not_judged_between_two_rows_and_missing_things_say_why():
    two = OURS.iloc[:2]
    out = judge(claims(("T", "ours: metrics ranked second", "count", 1), ("T", "Y: rank", "MI", 1),
                       ("T", "ours: rank", "VIF", 1), ("T", "Z: rank", "MI", 1)),
                two, {"ours": "ours", "Y": "nope"}, why_not={"Z": "the terms' names are stripped"})
    assert (out["verdict"] == "not measurable here").all() and out["ours"].isna().all()
    assert out["note"].tolist() == ["we compare 2 settings, the paper more: 'second' only means 'not first'",
                                    "no row for 'Y' in our table", "VIF is not in our table", "the terms' names are stripped"]


def test_converge_within_and_count():
    ours = pd.DataFrame({"iterations": [180.0, math.nan], "count": [math.nan, 50540.0]}, index=["terms", "grid"])
    out = judge(claims(("F", "two terms: converge within", "iterations", 200),
                       ("F", "patches: count", "count", 41703)), ours, {"two terms": "terms", "patches": "grid"})
    assert out["verdict"].tolist() == ["holds", "does not hold"] and out["ours"].tolist() == [180.0, 50540.0]


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown claim kind 'is great'"):
        judge(claims(("T", "ours: is great", "MI", 1)), OURS, {"ours": "ours"})


def test_plain_values_at_the_printed_precision_and_reasons_per_metric():
    ours = pd.DataFrame({"Params (M)": [0.178033], "FLOPs (G)": [150.0], "Runtime (s)": [0.5]}, index=["LRCFuse"])
    out = judge(claims(("Table 9", "LRCFuse", "Params (M)", 0.18), ("Table 9", "LRCFuse", "Runtime (s)", 0.06),
                       ("Table 9", "LRCFuse", "FLOPs (G)", 171.64)), ours, {"LRCFuse": "LRCFuse"},
                why_not={("LRCFuse", "FLOPs (G)"): "input size not stated"})
    assert out["verdict"].tolist() == ["holds", "does not hold", "not measurable here"]
    assert out["note"].tolist()[0] == "ours rounded to the paper's 2 decimal(s)" and out["note"].tolist()[2] == "input size not stated"


def test_paired_p_is_wilcoxon_over_pairs_and_nan_without_a_possible_test():
    from scipy.stats import wilcoxon

    from fusionlib.study.verdicts import MIN_PAIRS, paired_p
    a = pd.Series([3.0, 4.1, 5.2, 6.0, 7.5, 8.1, 9.9], index=list("abcdefg"))
    b = [2.0, 4.0, 5.0, 6.3, 7.0, 8.0, 9.0]
    assert paired_p(a, b) == pytest.approx(wilcoxon(a.values - b).pvalue)  # pairs by position, not by label
    assert paired_p(a, a) != paired_p(a, a)  # all differences zero: NaN
    assert paired_p(a[:MIN_PAIRS - 1], b[:MIN_PAIRS - 1]) != paired_p(a[:MIN_PAIRS - 1], b[:MIN_PAIRS - 1])
    assert paired_p(a[:MIN_PAIRS], [x - 1 for x in a[:MIN_PAIRS]]) < 0.05  # a consistent shift is detected
