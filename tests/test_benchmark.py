"""fusionlib.study.benchmark: statistics against scipy/statsmodels on fixed data, the conformance matrix on a
constructed flip, fusing once and scoring on a tiny set; evaluate(quantise=False); Parquet output."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import bootstrap, kendalltau, wilcoxon

from fusionlib.study import benchmark as B
from fusionlib.common import baselines as bl
from fusionlib.common.rgb import fuse_rgb
from fusionlib.data import find_pairs
from fusionlib.io import read_image, to_tensor
from fusionlib.metrics import evaluate
from fusionlib.study.reports import Reporter

from .conftest import write_split

RNG = np.random.default_rng(7)
N = 12
A = RNG.normal(5.0, 1.0, N)            # a: better than b on EN (higher is better) on most images
Bv = A - np.abs(RNG.normal(0.5, 0.2, N))
C = A + RNG.normal(0.0, 0.05, N)       # c: indistinguishable from a


def per_image(values=None, scoring="vifb", metric="EN", set_name="S"):
    values = values or {"a": A, "b": Bv, "c": C}
    return pd.DataFrame([{"set": set_name, "scoring": scoring, "method": m, "image": f"{i}.png", metric: float(v[i])}
                         for m, v in values.items() for i in range(len(v))])


def test_summary_is_scipys_bootstrap_and_sample_std():
    s = B.summary(per_image(), ["EN"], n_resamples=999, seed=3).set_index("method")
    ref = bootstrap((A,), np.mean, confidence_level=0.95, n_resamples=999, method="BCa", rng=np.random.default_rng(3))
    assert s.at["a", "ci_low"] == pytest.approx(ref.confidence_interval.low)
    assert s.at["a", "ci_high"] == pytest.approx(ref.confidence_interval.high)
    assert s.at["a", "mean"] == pytest.approx(A.mean()) and s.at["a", "std"] == pytest.approx(A.std(ddof=1))
    assert s.at["a", "n"] == N
    assert B.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0) and all(map(math.isnan, B.bootstrap_ci([1.0])))


def test_pairwise_is_wilcoxon_with_holm():
    out = B.pairwise(per_image(), "vifb", ["EN"], min_images=10).set_index(["A", "B"])
    raw = {("a", "b"): wilcoxon(A - Bv).pvalue, ("a", "c"): wilcoxon(A - C).pvalue, ("b", "c"): wilcoxon(Bv - C).pvalue}
    for pair, p in raw.items():
        assert out.at[pair, "p"] == pytest.approx(p)
    # Holm by hand: sort, multiply by (m - rank), running maximum, cap at 1
    order = sorted(raw, key=raw.get)
    running, holm = 0.0, {}
    for k, pair in enumerate(order):
        running = max(running, min(1.0, (len(order) - k) * raw[pair]))
        holm[pair] = running
    for pair in raw:
        assert out.at[pair, "p_holm"] == pytest.approx(holm[pair])
    assert out.at[("a", "b"), "outcome"] == "A better" and out.at[("a", "b"), "A better on"] == N
    assert out.at[("b", "c"), "outcome"] == "B better"
    # fewer images than the floor: no test at all
    assert B.pairwise(per_image(), "vifb", ["EN"], min_images=N + 1).empty


def test_pairwise_says_when_n_is_too_small_to_reject():
    # 10 images, 10 methods (45 pairs): even "better on every image" gives Holm p = 45 · 2/2^10 ≈ 0.088
    n, methods = 10, 10
    vals = {f"m{k}": A[:n] + k for k in range(methods)}   # m9 beats m0 on every image by 9
    out = B.pairwise(per_image(vals), "vifb", ["EN"], min_images=n).set_index(["A", "B"])
    assert B.smallest_holm_p(n, 45) == pytest.approx(45 * 2 / 2 ** n) and B.smallest_holm_p(n, 45) > 0.05
    assert out.at[("m0", "m9"), "p"] == pytest.approx(2 / 2 ** n)  # the most extreme exact p
    assert set(out["outcome"]) == {"cannot reject at this n"}
    # the same data with 3 methods: the family is small enough, so a real "no difference" stays one
    small = B.pairwise(per_image(), "vifb", ["EN"], min_images=10).set_index(["A", "B"])
    assert B.smallest_holm_p(N, 3) < 0.05
    assert "cannot reject at this n" not in set(small["outcome"])
    # untestable pairs (all differences zero) are not in Holm's family, so they do not raise the bound:
    # six identical methods, one better everywhere and one noisy: 28 pairs, 13 tested (13 · 2/2^10 < 0.05)
    vals = {**{f"same{k}": A[:n] for k in range(6)}, "up": A[:n] + 1, "noisy": A[:n] + np.random.default_rng(1).normal(0, 1, n)}
    mixed = B.pairwise(per_image(vals), "vifb", ["EN"], min_images=n)
    assert (mixed["outcome"] == "untestable").sum() == 15 and B.smallest_holm_p(n, 13) < 0.05 <= B.smallest_holm_p(n, 28)
    assert "cannot reject at this n" not in set(mixed["outcome"])
    assert (mixed["outcome"] == "no significant difference").any()


def test_pairwise_respects_lower_is_better():
    out = B.pairwise(per_image(metric="Nabf"), "vifb", ["Nabf"]).set_index(["A", "B"])
    assert out.at[("a", "b"), "outcome"] == "B better"  # b's Nabf is lower on every image


def test_ranks_stability_and_cliques():
    data = per_image()
    ranks = B.rank_table(data, "vifb", ["EN"])
    assert ranks.loc[("S", "b"), "EN"] == 3
    st = B.rank_stability(data, "S", "vifb", "EN", n_resamples=500).set_index("method")
    assert st.at["b", "rank"] == 3 and st.at["b", "same rank"] == 1.0 and st.at["b", "ranked first"] == 0.0
    assert st.at["a", "same rank"] < 1.0  # a and c swap places under resampling
    avg, p, per = B.mean_ranks(data, "S", "vifb", ["EN"])
    assert avg.index[-1] == "b" and p < 0.05
    assert per.shape == (N, 3)
    cliques = B.rank_cliques(per)
    assert any(set(c) == {"a", "c"} for c in cliques) and not any("b" in c for c in cliques)


def test_rank_helpers_say_which_nan_images_they_leave_out():
    c = C.copy()
    c[3] = np.nan  # c has no EN on image 3.png
    data = per_image({"a": A, "b": Bv, "c": c})
    with pytest.warns(UserWarning, match=r"rank_stability\('S', 'vifb', 'EN'\): left out images some method has no score on: 3.png"):
        st = B.rank_stability(data, "S", "vifb", "EN", n_resamples=50)
    assert set(st["method"]) == {"a", "b", "c"}
    with pytest.warns(UserWarning, match=r"mean_ranks\('S', 'vifb'\): c left out: no score on c: 3.png"):
        avg, _, _ = B.mean_ranks(data, "S", "vifb", ["EN"])
    assert "c" not in avg.index
    with pytest.warns(UserWarning, match=r"rank_table\('vifb'\): means over fewer images where a score is NaN: S / c / 3.png: EN"):
        B.rank_table(data, "vifb", ["EN"])


def test_conformance_counts_a_constructed_flip():
    base = {"a": np.full(N, 3.0), "b": np.full(N, 2.0), "c": np.full(N, 1.0)}
    flipped = {"a": np.full(N, 2.0), "b": np.full(N, 3.0), "c": np.full(N, 1.0)}
    scaled = {k: v * 10 for k, v in base.items()}
    data = pd.concat([per_image(base, "canonical"), per_image(flipped, "tang"), per_image(scaled, "lrrnet")])
    out = B.conformance(data, ["EN"], [("canonical", "tang", "x"), ("canonical", "lrrnet", "y")]).set_index("comparison")
    assert out.at["x", "flipped pairs"] == 1 and out.at["x", "which"] == "a / b" and out.at["x", "pairs"] == 3
    assert out.at["x", "Kendall τ"] == pytest.approx(kendalltau([3, 2, 1], [2, 3, 1]).statistic)
    assert out.at["y", "flipped pairs"] == 0 and out.at["y", "Kendall τ"] == pytest.approx(1.0)
    assert out.at["y", "median |Δ| (%)"] == pytest.approx(9 / 5.5 * 100)


def test_evaluate_float_output_differs_from_its_8_bit_file():
    rng = np.random.default_rng(0)
    ir = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    vis = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    fused = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    q = evaluate(ir, vis, fused, ["SD", "AG"], "canonical")
    f = evaluate(ir, vis, fused, ["SD", "AG"], "canonical", quantise=False)
    saved = evaluate(ir, vis, (fused * 255).round().to(torch.uint8), ["SD", "AG"], "canonical")
    assert q == saved and q != f
    assert f["SD"] == pytest.approx(q["SD"], rel=0.02)


def test_fuse_once_score_every_way(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_CACHE", str(tmp_path / "cache"))
    folder = write_split(tmp_path / "toy" / "test", ["a.png", "b.png"], size=(48, 56))
    samples = {"toy": find_pairs(folder)}
    methods = [B.Method("average", "classical", fuse_rgb(bl.average), key="average"),
               B.Method("VIS", "reference", lambda ir, vis: vis, key="vis")]
    first = B.fuse_all(methods, samples, {"toy": False}, progress=False)
    again = B.fuse_all(methods, samples, {"toy": False}, progress=False)
    assert len(first) == 4 and first["seconds"].notna().all() and again["seconds"].isna().all()  # cached
    scores = B.score_all(again, metrics=["EN", "SSIM"], progress=False)
    assert len(scores) == 4 * len(B.SCORINGS)
    row = scores[(scores["method"] == "average") & (scores["scoring"] == "vifb") & (scores["image"] == "a.png")].iloc[0]
    fused = np.load(first.loc[0, "fused"]).astype(np.float32)
    ref = evaluate(read_image(first.loc[0, "ir"], "L"), read_image(first.loc[0, "vis"], "RGB"),
                   torch.from_numpy(fused).permute(2, 0, 1)[None], ["EN", "SSIM"], "vifb")
    assert row["EN"] == pytest.approx(ref["EN"]) and row["SSIM"] == pytest.approx(ref["SSIM"])
    with pytest.raises(ValueError, match="unknown scoring"):
        B.score_all(again, ("vifb", "matlab"), progress=False)


def test_hazy_sets_give_the_hazy_image_and_score_against_the_clear_one(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_CACHE", str(tmp_path / "cache"))
    folder = write_split(tmp_path / "hz" / "test", ["a.png"], size=(32, 32), modalities=("ir", "vi_hazy", "vi_clear"))
    seen = {}

    def spy(ir, vis):
        seen["vis"] = vis
        return vis
    methods = [B.Method("spy", "two-stage", spy, key="spy", sets="hazy"), B.Method("clear-only", "classical", spy, key="c")]
    fused = B.fuse_all(methods, {"hz": find_pairs(folder)}, {"hz": True}, progress=False)
    assert list(fused["method"]) == ["spy"] and fused.loc[0, "vis"].endswith("vi_clear/a.png")
    assert torch.equal(seen["vis"], to_tensor(read_image(folder / "vi_hazy" / "a.png", "RGB")))


def test_reporter_writes_parquet_on_request(tmp_path):
    rep = Reporter("bench", "nb", "smoke", root=tmp_path)
    df = pd.DataFrame({"image": ["a", "b"], "EN": [1.123456789, 2.0]})
    rep.table(df, "per_image", "new: x", decimals=2, parquet=True)
    back = pd.read_parquet(tmp_path / "smoke" / "bench" / "per_image.parquet")
    assert back["EN"].tolist() == [1.123456789, 2.0]  # full precision, unlike the CSV's 2 decimals
    assert (tmp_path / "smoke" / "bench" / "per_image.csv").read_text().splitlines()[1] == "a,1.12"
