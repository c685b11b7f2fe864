"""Exercises at the end of the derivation notebooks, with answers a student can check alone.

``check(notebook, exercise, answer)`` prints whether the answer is right, with a hint when it is not,
and never prints the solution. An implement-it exercise takes the student's function instead of a
number: :func:`run_cases` calls it beside the package's own on seeded inputs and edge cases (batches,
zeros, borders, sizes) and names the first case that fails and how (an error, a shape, the largest
difference), never the reference code. The expected answers are computed here with the package itself (the
functions the notebooks derive), so no answer key is stored in the code a student runs; worked
solutions are written out once, in ``docs/solutions/<notebook>.md``, for teachers and for afterwards.

In a notebook::

    from fusionlib.study.exercises import check
    answer = None  # your answer
    check("10", 1, answer)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["Exercise", "STUDY_EXERCISES", "exercises", "check", "expected", "run_cases"]


@dataclass(frozen=True)
class Exercise:
    """One exercise. ``answer_kind`` ``"predict-<kind>"`` is a predict-then-measure exercise: ``compute()`` measures,
    and the check shows the measurement beside the prediction. ``"function"`` is an implement-it exercise: the student writes a function the
    notebook derived, ``compute()`` returns the package's own, and ``cases()`` gives ``(name, args)`` pairs (seeded,
    fresh on every call, edge cases included) on which the two must agree within ``tolerance`` (absolute)."""
    notebook: str                  # the notebook's number, e.g. "10"
    number: int
    question: str                  # one line: what to compute, predict or implement
    answer_kind: str               # "number", "vector", "integer", "bool", "function", or "predict-" + a kind
    compute: Callable[[], Any]     # the expected answer (for "function": the package's function), computed with the package
    hint: str
    tolerance: float = 1e-3        # relative, for numbers and vectors; absolute, for functions
    cases: Callable[[], list[tuple[str, tuple]]] | None = None  # "function" only: (name, args) to call both on


def _en_half_black_half_white() -> float:
    from fusionlib.metrics import evaluate
    img = np.zeros((16, 16), np.uint8)
    img[:, 8:] = 255
    return evaluate(img, np.stack([img] * 3, -1), img, ["EN"], "canonical")["EN"]


def _lower_is_better() -> int:
    from fusionlib.metrics import METRICS
    return sum(not m.higher_is_better for m in METRICS.values())


def _vifb_sd_identical_channels() -> bool:
    from fusionlib.metrics import evaluate
    rng = np.random.default_rng(0)
    g = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    rgb = np.stack([g] * 3, -1)
    return math.isclose(evaluate(g, rgb, rgb, ["SD"], "vifb")["SD"], evaluate(g, g, g, ["SD"], "vifb")["SD"])


def _entropy():
    from fusionlib.metrics.functional import entropy
    return entropy


def _entropy_cases() -> list[tuple[str, tuple]]:
    g = torch.Generator().manual_seed(1)
    return [("one 16×16 plane", (torch.randint(0, 256, (1, 16, 16), generator=g).double(),)),
            ("a batch of 3 planes of 9×13", (torch.randint(0, 256, (3, 9, 13), generator=g).double(),)),
            ("a constant plane", (torch.full((1, 8, 8), 7.0, dtype=torch.float64),)),
            ("levels that are not integers", (torch.rand(2, 10, 10, generator=g, dtype=torch.float64) * 255,)),
            ("only the extreme levels 0 and 255", (torch.tensor([[[0.0, 255.0], [255.0, 255.0]]], dtype=torch.float64),))]


def _holm_images() -> int:
    from fusionlib.study.benchmark import smallest_holm_p
    return next(n for n in range(1, 64) if smallest_holm_p(n, 15) < 0.05)


def _afri_target_copies_vis() -> float:
    from fusionlib.data.synthetic import make_scene
    from fusionlib.io import split_luma, to_tensor
    y = split_luma(to_tensor((make_scene(0, (96, 128)).vis * 255).round().astype(np.uint8)), "jpeg")[0]
    target = torch.maximum(0.3 * y + 0.1, y)  # Eq. 20's target with a dim pseudo-IR that has the visible image's structure
    return float(torch.corrcoef(torch.stack([target.flatten(), y.flatten()]))[0, 1])


def _outside_the_noise_floor() -> bool:
    from fusionlib.study.ledger import noise_floor
    floor = noise_floor("lrcfuse/noise_floor.csv seeds")["SD"]  # the std (ddof 1) of the seeds' output SD, as committed
    return bool(7.0 > 2 * floor)


def _conventions_agree_on_mi() -> bool:
    from fusionlib.common import baselines as bl
    from fusionlib.common.rgb import fuse_rgb
    from fusionlib.data.synthetic import make_scene
    from fusionlib.io import to_array, to_tensor
    from fusionlib.metrics import evaluate
    scene = make_scene(3, (96, 128))
    ir, vis = ((x * 255).round().astype(np.uint8) for x in (scene.ir, scene.vis))
    fused = to_array(fuse_rgb(bl.max_abs)(to_tensor(ir), to_tensor(vis))[0])
    mi = {conv: evaluate(ir, vis, fused, ["MI"], conv)["MI"] for conv in ("vifb", "canonical")}
    return abs(mi["canonical"] / mi["vifb"] - 1) <= 0.10


# the study's own notebooks' exercises; each paper's come through its door (fusionlib.study.registry)
STUDY_EXERCISES = (
    Exercise("01", 1, "EN (bits) of an 8-bit image whose pixels are half 0 and half 255", "number", _en_half_black_half_white,
             "EN = −Σ p·log2 p over the 256-bin histogram; only two bins are occupied."),
    Exercise("01", 2, "How many of the 20 metrics are better when lower?", "integer", _lower_is_better,
             "Look for error, distortion and naturalness-distance metrics: fusionlib.metrics.METRICS[m].higher_is_better."),
    Exercise("01", 3, "Under VIFB, is the SD of an RGB fused image with three identical channels G equal to the SD of G alone? (True/False)",
             "bool", _vifb_sd_identical_channels, "VIFB scores each channel and averages the three numbers."),
    Exercise("01", 4, "Implement EN: the entropy in bits of each plane of f (B, H, W) on 0–255, −Σ p·log2 p over the 256-bin "
             "histogram of ⌊f⌋; return (B,)", "function", _entropy,
             "Count each of the 256 levels per plane (torch.bincount or one_hot), divide by H·W, and skip empty bins: 0·log 0 = 0.",
             1e-9, _entropy_cases),
    # notebook 93: predict, then measure; each tied to something this repository found (the hint says where)
    Exercise("93", 1, "Six methods, compared pairwise (15 paired Wilcoxon tests, Holm-corrected at 0.05): how many test images "
             "must the benchmark score before any difference can come out significant, whatever the methods do", "predict-integer",
             _holm_images, "All n differences of one sign give the exact test's smallest p, 2/2^n, and Holm multiplies the smallest p "
             "by 15 (docs/reviewing.md, fusionlib.study.benchmark.smallest_holm_p)."),
    Exercise("93", 2, "DCMIF trains its fusion stage towards max(pseudo-IR, Y). If the pseudo-IR is a dim image with the visible "
             "image's structure (0.3·Y + 0.1), what is the Pearson r of that target with Y (two decimals)", "predict-number",
             _afri_target_copies_vis, "Wherever Y is above 1/7 the maximum is Y itself: the target is the visible image almost "
             "everywhere, which is why the cpu model's fused image is a copy of VIS (docs/dcmif.md, health check H3).", 0.01),
    Exercise("93", 3, "Notebook 12 trained its LRCFuse recipe with three seeds (lrcfuse/noise_floor.csv, one row each). A variant's "
             "output SD differs from the first seed's by 7.0: is that outside two standard deviations of the seeds' SD (True/False)",
             "predict-bool", _outside_the_noise_floor, "The floor is the seeds' standard deviation (ddof 1) of the committed table, "
             "the spread every sweep is read against (fusionlib.study.ledger.noise_floor); look at the table before you predict."),
    Exercise("93", 4, "Fuse a synthetic pair by the maximum and score its MI under the VIFB convention (nats, min-max stretched, "
             "colour per channel) and the canonical one (bits, raw grey levels): are the two within 10 % of each other "
             "(True/False)", "predict-bool", _conventions_agree_on_mi,
             "A nat is 1.44 bits before anything else differs, and the stretch and the colour handling move it further "
             "(docs/metrics.md#conventions): a paper's MI is comparable only with numbers of its own toolbox."),
)


def exercises() -> dict[tuple[str, int], Exercise]:
    """Every exercise, ``(notebook, number) -> Exercise``: the study's own and each paper's."""
    from fusionlib.study.registry import papers
    every = [*STUDY_EXERCISES, *(e for door in papers().values() for e in door.exercises)]
    return {(e.notebook, e.number): e for e in sorted(every, key=lambda e: (e.notebook, e.number))}


def expected(notebook: str, exercise: int) -> Any:
    """The expected answer (for tests and teachers; the notebooks call :func:`check`)."""
    return _get(notebook, exercise).compute()


def _get(notebook: str, exercise: int) -> Exercise:
    key, every = (str(notebook).split("_")[0], int(exercise)), exercises()
    if key not in every:
        known = ", ".join(str(n) for (nb, n) in every if nb == key[0]) or "none"
        raise KeyError(f"no exercise {key[1]} for notebook {key[0]} (its exercises: {known})")
    return every[key]


def _matches(e: Exercise, answer: Any, want: Any) -> bool:
    kind = e.answer_kind.removeprefix("predict-")  # a prediction is checked as the kind it predicts
    if kind == "bool":
        return isinstance(answer, (bool, np.bool_)) and bool(answer) == want
    if kind == "integer":
        return isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and int(answer) == want
    if kind == "vector":
        try:
            a = np.asarray(answer, dtype=float).ravel()
        except (TypeError, ValueError):
            return False
        return a.shape == np.shape(want) and np.allclose(a, want, rtol=e.tolerance, atol=e.tolerance)
    try:
        return math.isclose(float(answer), float(want), rel_tol=e.tolerance, abs_tol=e.tolerance)
    except (TypeError, ValueError):
        return False


def _as_tensors(x: Any) -> list:
    return [torch.as_tensor(v).detach() for v in x] if isinstance(x, (tuple, list)) else [torch.as_tensor(x).detach()]


def run_cases(e: Exercise, fn: Callable) -> tuple[bool | None, str]:
    """Call ``fn`` and the package's function on every case of an implement-it exercise: ``(True, "")`` when they
    agree everywhere, ``(False, what failed on which case)``, or ``(None, ...)`` while ``fn`` is the skeleton
    (it raises ``NotImplementedError``). The message names the case and the symptom, never the reference's code."""
    reference = e.compute()
    for (name, args), (_, mine) in zip(e.cases(), e.cases()):  # two fresh copies: a function that writes its input harms no one
        want = _as_tensors(reference(*args))
        try:
            got = fn(*mine)
        except NotImplementedError:
            return None, "no answer yet — write the function's body and run the cell again"
        except Exception as exc:  # the student's code: any error is a message, not a crash
            return False, f"case '{name}': your function raised {type(exc).__name__}: {exc}"
        try:
            got = _as_tensors(got)
        except (TypeError, ValueError, RuntimeError):
            return False, f"case '{name}': it returned {type(got).__name__}, not a tensor"
        if len(got) != len(want):
            return False, f"case '{name}': it returned {len(got)} value(s), expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            what = f"case '{name}'" + (f", output {i + 1}" if len(want) > 1 else "")
            if tuple(g.shape) != tuple(w.shape):
                return False, f"{what}: shape {tuple(g.shape)}, expected {tuple(w.shape)}"
            if w.is_complex() != g.is_complex():
                return False, f"{what}: {'complex' if g.is_complex() else 'real'} values, expected {'complex' if w.is_complex() else 'real'}"
            diff = (g.to(w.dtype) - w).abs() if w.numel() else torch.zeros(1)
            if not bool(torch.isfinite(g).all()) and bool(torch.isfinite(w).all()):
                return False, f"{what}: NaN or infinite values"
            if float(diff.max()) > e.tolerance:
                return False, f"{what}: values differ by up to {float(diff.max()):.3g} (tolerance {e.tolerance:g})"
    return True, ""


def check(notebook: str, exercise: int, answer: Any) -> bool:
    """Print whether ``answer`` is right (with a hint when it is not); return it as a bool. ``None``
    means "not answered yet" (the notebooks' placeholder): a reminder, never an error. For an implement-it
    exercise ``answer`` is the student's function; a failure names the case and how it failed."""
    e = _get(notebook, exercise)
    tag = f"{e.notebook} · exercise {e.number}"
    if answer is None:
        print(f"{tag}: no answer yet — set `answer` and run the cell again. Hint: {e.hint}")
        return False
    if e.answer_kind == "function":
        if not callable(answer):
            print(f"{tag}: not yet ✗ — `answer` must be your function. Hint: {e.hint}")
            return False
        ok, why = run_cases(e, answer)
        if ok is None:
            print(f"{tag}: {why}. Hint: {e.hint}")
            return False
        print(f"{tag}: right ✓ (all {len(e.cases())} cases)" if ok else f"{tag}: not yet ✗ — {why}. Hint: {e.hint}")
        return ok
    want = e.compute()
    ok = _matches(e, answer, want)
    if e.answer_kind.startswith("predict-"):  # the point is the measurement: show it, with why
        shown = f"{want:.4g}" if isinstance(want, float) else str(want)
        print(f"{tag}: you predicted {answer!r}; measured {shown}: {'right ✓' if ok else 'not what you predicted ✗'}. Why: {e.hint}")
        return ok
    print(f"{tag}: {'right ✓' if ok else 'not yet ✗ — hint: ' + e.hint}")
    return ok
