"""Exercises at the end of the derivation notebooks, with answers a student can check alone.

``check(notebook, exercise, answer)`` prints whether the answer is right, with a hint when it is not,
and never prints the solution. The expected answers are computed here with the package itself (the
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

__all__ = ["Exercise", "STUDY_EXERCISES", "exercises", "check", "expected"]


@dataclass(frozen=True)
class Exercise:
    notebook: str                  # the notebook's number, e.g. "10"
    number: int
    question: str                  # one line: what to compute or predict
    answer_kind: str               # "number", "vector", "integer" or "bool"
    compute: Callable[[], Any]     # the expected answer, computed with the package
    hint: str
    tolerance: float = 1e-3        # relative, for numbers and vectors


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


# the study's own notebooks' exercises; each paper's come through its door (fusionlib.study.registry)
STUDY_EXERCISES = (
    Exercise("01", 1, "EN (bits) of an 8-bit image whose pixels are half 0 and half 255", "number", _en_half_black_half_white,
             "EN = −Σ p·log2 p over the 256-bin histogram; only two bins are occupied."),
    Exercise("01", 2, "How many of the 20 metrics are better when lower?", "integer", _lower_is_better,
             "Look for error, distortion and naturalness-distance metrics: fusionlib.metrics.METRICS[m].higher_is_better."),
    Exercise("01", 3, "Under VIFB, is the SD of an RGB fused image with three identical channels G equal to the SD of G alone? (True/False)",
             "bool", _vifb_sd_identical_channels, "VIFB scores each channel and averages the three numbers."),
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
    if e.answer_kind == "bool":
        return isinstance(answer, (bool, np.bool_)) and bool(answer) == want
    if e.answer_kind == "integer":
        return isinstance(answer, (int, np.integer)) and not isinstance(answer, bool) and int(answer) == want
    if e.answer_kind == "vector":
        try:
            a = np.asarray(answer, dtype=float).ravel()
        except (TypeError, ValueError):
            return False
        return a.shape == np.shape(want) and np.allclose(a, want, rtol=e.tolerance, atol=e.tolerance)
    try:
        return math.isclose(float(answer), float(want), rel_tol=e.tolerance, abs_tol=e.tolerance)
    except (TypeError, ValueError):
        return False


def check(notebook: str, exercise: int, answer: Any) -> bool:
    """Print whether ``answer`` is right (with a hint when it is not); return it as a bool. ``None``
    means "not answered yet" (the notebooks' placeholder): a reminder, never an error."""
    e = _get(notebook, exercise)
    tag = f"{e.notebook} · exercise {e.number}"
    if answer is None:
        print(f"{tag}: no answer yet — set `answer` and run the cell again. Hint: {e.hint}")
        return False
    ok = _matches(e, answer, e.compute())
    print(f"{tag}: {'right ✓' if ok else 'not yet ✗ — hint: ' + e.hint}")
    return ok
