"""fusionlib.study.exercises: every checker accepts the worked solution of docs/solutions/ and refuses an
obvious wrong answer; every derivation notebook ends with its exercises; placeholders never fail."""

import ast
import json
import re
from pathlib import Path

import pytest
import torch

from fusionlib.study.exercises import check, exercises, expected

EXERCISES = exercises()  # the study's and every paper's

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ("01", "10", "11", "20", "21", "30", "31", "40")


def solutions() -> dict[tuple[str, int], object]:
    """(notebook, exercise) -> the answer of docs/solutions/<notebook>.md: a literal, or for an implement-it
    exercise the function ``answer`` its code block defines."""
    out = {}
    for path in sorted((ROOT / "docs" / "solutions").glob("[0-9][0-9]_*.md")):
        for number, body in re.findall(r"^## Exercise (\d+)\b(.*?)(?=^## |\Z)", path.read_text(), re.M | re.S):
            literal = re.search(r"^\*\*Answer:\*\* `([^`]+)`", body, re.M)
            code = re.search(r"^\*\*Answer:\*\*\n\n```python\n(.*?)```", body, re.M | re.S)
            assert literal or code, f"{path.name} exercise {number} has no **Answer:** line or code block"
            if literal:
                out[(path.name[:2], int(number))] = ast.literal_eval(literal.group(1))
            else:
                space = {}
                exec(code.group(1), space)  # the worked solution, as a student would paste it
                out[(path.name[:2], int(number))] = space["answer"]
    return out


SOLUTIONS = solutions()


def _wrong_entropy(f):  # natural logarithm instead of bits
    levels = f.floor().long().flatten(1)
    p = torch.nn.functional.one_hot(levels, 256).sum(1).double() / levels.shape[1]
    return -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(1)


def _wrong_ista(D, y, x, lam):  # the threshold not divided by L
    L = torch.linalg.matrix_norm(D, 2) ** 2
    z = x + (y - x @ D.T) @ D / L
    return torch.sign(z) * torch.clamp(z.abs() - lam, min=0)


def _wrong_cfpm(stage, c, r_x, r_y, lam):  # the fit without its ½
    fit = ((stage.a(c) - r_x) ** 2).sum((1, 2, 3)) + ((stage.b(c) - r_y) ** 2).sum((1, 2, 3))
    return fit + (lam.view(1, -1, 1, 1) * c.abs()).sum((1, 2, 3))


def _wrong_otf(d, size):  # padded but not rolled: the atom's corner, not its centre, at the origin
    k = d.shape[-1]
    return torch.fft.fft2(torch.nn.functional.pad(d, (0, size[1] - k, 0, size[0] - k)))


def _wrong_pad(x, m):  # zeros instead of wrapping around
    h, w = x.shape[-2:]
    return torch.nn.functional.pad(x, (0, (-w) % m, 0, (-h) % m)), (h, w)


def _wrong_dark(img, patch):  # the window's minimum per channel, averaged instead of the minimum over channels
    return (-torch.nn.functional.max_pool2d(-img, patch, stride=1, padding=patch // 2)).mean(1, keepdim=True)


def _wrong_positions(window):  # raw offsets, not log-scaled
    rows, cols = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=-1).float()
    return coords[:, None, :] - coords[None, :, :]


def _wrong_directional(e, e_vis, e_ir, dt_vis, dt_ir):  # dot products of unnormalised directions
    return 0.5 * (1 - ((e - e_vis) * dt_vis).sum(-1)) + 0.5 * (1 - ((e - e_ir) * dt_ir).sum(-1))


# implement-it exercise -> a subtly wrong implementation, and the case whose failure the checker must name
WRONG = {("01", 4): (_wrong_entropy, "one 16×16 plane"), ("10", 4): (_wrong_ista, "from x = 0"),
         ("11", 3): (_wrong_cfpm, "a batch of 2, 8×8, four atoms"), ("20", 4): (_wrong_otf, "one 5×5 atom, 8×8 image"),
         ("21", 3): (_wrong_pad, "21×35 to multiples of 8"), ("30", 4): (_wrong_dark, "a 16×20 image, 15×15 windows"),
         ("31", 4): (_wrong_positions, "a 2×2 window"), ("40", 4): (_wrong_directional, "a batch of 4 in 8 dimensions")}
IMPLEMENT = sorted(k for k, e in EXERCISES.items() if e.answer_kind == "function")


def wrong(answer):
    """An obvious wrong answer of the same type."""
    if isinstance(answer, bool):
        return not answer
    if isinstance(answer, int):
        return answer + 1
    if isinstance(answer, float):
        return answer * 1.5 + 1
    return [a + 1 for a in answer]


def test_every_exercise_has_one_solution_and_every_derivation_notebook_two_to_four():
    assert set(SOLUTIONS) == set(EXERCISES)
    for nb in DERIVATIONS:
        assert 3 <= sum(n == nb for n, _ in EXERCISES) <= 4, nb


def test_one_implement_it_exercise_per_derivation_notebook():
    assert sorted({nb for nb, _ in IMPLEMENT}) == sorted(DERIVATIONS) and set(WRONG) == set(IMPLEMENT)


@pytest.mark.parametrize("key", IMPLEMENT, ids=lambda k: f"{k[0]}-{k[1]}")
def test_an_implementation_is_checked_case_by_case_and_a_subtle_error_is_named(key, capsys):
    e = EXERCISES[key]
    assert check(*key, e.compute()) is True and "right ✓ (all" in capsys.readouterr().out  # the package's own function
    assert check(*key, SOLUTIONS[key]) is True  # the worked solution of docs/solutions/
    capsys.readouterr()
    bad, case = WRONG[key]
    assert check(*key, bad) is False
    out = capsys.readouterr().out
    assert f"case '{case}'" in out and e.hint in out, out
    import inspect
    code = [line.strip() for line in inspect.getsource(e.compute()).splitlines() if len(line.strip()) > 25]
    assert not any(line in out for line in code)  # the reference's code is never shown


def test_the_skeleton_is_a_reminder_and_a_crash_is_a_message(capsys):
    def skeleton(f):
        raise NotImplementedError
    assert check("01", 4, skeleton) is False and "no answer yet" in capsys.readouterr().out
    assert check("01", 4, lambda f: f.shape[0] / 0) is False and "raised ZeroDivisionError" in capsys.readouterr().out
    assert check("01", 4, lambda f: f.sum((1, 2))[:, None]) is False and "shape (1, 1), expected (1,)" in capsys.readouterr().out
    assert check("01", 4, 3.0) is False and "must be your function" in capsys.readouterr().out


PREDICT = sorted(k for k, e in EXERCISES.items() if e.answer_kind.startswith("predict-"))


def test_at_least_four_predict_then_measure_exercises_each_in_its_notebook_cell():
    assert len(PREDICT) >= 4
    for nb, n in PREDICT:
        path = next((ROOT / "notebooks").glob(f"{nb}_*.ipynb"))
        sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
        assert any(s.startswith("prediction = None") and f'check("{nb}", {n}, prediction)' in s for s in sources), (nb, n)
        assert any(EXERCISES[(nb, n)].question in s for s in sources), (nb, n)


@pytest.mark.parametrize("key", PREDICT, ids=lambda k: f"{k[0]}-{k[1]}")
def test_a_prediction_is_answered_with_the_measurement(key, capsys):
    e = EXERCISES[key]
    assert check(*key, SOLUTIONS[key]) is True and "right ✓" in capsys.readouterr().out
    assert check(*key, wrong(SOLUTIONS[key])) is False
    out = capsys.readouterr().out
    assert "measured" in out and "not what you predicted" in out and e.hint in out
    assert check(*key, None) is False and "measured" not in capsys.readouterr().out  # predict first: no measurement for nothing


@pytest.mark.parametrize("key", sorted(k for k in EXERCISES if k not in IMPLEMENT and k not in PREDICT), ids=lambda k: f"{k[0]}-{k[1]}")
def test_checker_accepts_the_solution_and_refuses_a_wrong_answer(key, capsys):
    assert check(*key, SOLUTIONS[key]) is True
    assert "right" in capsys.readouterr().out
    assert check(*key, wrong(SOLUTIONS[key])) is False
    e = EXERCISES[key]
    assert capsys.readouterr().out == f"{e.notebook} · exercise {e.number}: not yet ✗ — hint: {e.hint}\n"  # never the solution
    assert expected(*key) == pytest.approx(SOLUTIONS[key], rel=e.tolerance, abs=e.tolerance)


def test_placeholders_and_wrong_types_are_answered_not_raised(capsys):
    assert check("10", 1, None) is False and "no answer yet" in capsys.readouterr().out
    assert check("10", 1, "minus one") is False
    assert check("01", 2, 6.0) is False  # an integer question wants an integer
    assert check("01", 3, 1) is False    # a True/False question wants a bool
    with pytest.raises(KeyError, match="its exercises: 1, 2, 3"):
        check("10", 9, 1)


def test_the_one_d_fft_exercise_has_a_true_control():
    """The 2-D transfer function does satisfy the identity the 1-D one breaks (else the exercise tests nothing)."""
    import torch

    from fusionlib.dcmif.model import correlate, otf
    g = torch.Generator().manual_seed(0)
    s, d = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64), torch.rand(1, 5, 5, generator=g, dtype=torch.float64)
    via = torch.fft.ifft2(torch.conj(otf(d, (8, 8)))[0] * torch.fft.fft2(s[0, 0])).real
    assert torch.allclose(correlate(s, d, "circular")[0, 0], via, atol=1e-9)


@pytest.mark.parametrize("nb", DERIVATIONS)
def test_each_derivation_notebook_ends_with_its_exercises(nb):
    path = next((ROOT / "notebooks").glob(f"{nb}_*.ipynb"))
    cells = json.loads(path.read_text())["cells"]
    numbers = sorted(n for k, n in EXERCISES if k == nb)
    tail = cells[-(len(numbers) + 2):]
    assert tail[0]["cell_type"] == "markdown" and "Exercises" in "".join(tail[0]["source"])
    for e, cell in zip(numbers, tail[2:]):
        src = "".join(cell["source"])
        start = "def answer(" if EXERCISES[(nb, e)].answer_kind == "function" else "answer = None"
        assert src.startswith(start) and f'check("{nb}", {e}, answer)' in src
        assert EXERCISES[(nb, e)].question in "".join(tail[0]["source"])
