"""fusionlib.study.exercises: every checker accepts the worked solution of docs/solutions/ and refuses an
obvious wrong answer; every derivation notebook ends with its exercises; placeholders never fail."""

import ast
import json
import re
from pathlib import Path

import pytest

from fusionlib.study.exercises import check, exercises, expected

EXERCISES = exercises()  # the study's and every paper's

ROOT = Path(__file__).resolve().parents[1]
DERIVATIONS = ("01", "10", "11", "20", "21", "30", "31", "40")


def solutions() -> dict[tuple[str, int], object]:
    """(notebook, exercise) -> the answer literal of docs/solutions/<notebook>.md."""
    out = {}
    for path in sorted((ROOT / "docs" / "solutions").glob("[0-9][0-9]_*.md")):
        for number, body in re.findall(r"^## Exercise (\d+)\b(.*?)(?=^## |\Z)", path.read_text(), re.M | re.S):
            answer = re.search(r"^\*\*Answer:\*\* `([^`]+)`", body, re.M)
            assert answer, f"{path.name} exercise {number} has no **Answer:** line"
            out[(path.name[:2], int(number))] = ast.literal_eval(answer.group(1))
    return out


SOLUTIONS = solutions()


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
        assert 2 <= sum(n == nb for n, _ in EXERCISES) <= 4, nb


@pytest.mark.parametrize("key", sorted(EXERCISES), ids=lambda k: f"{k[0]}-{k[1]}")
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
        assert src.startswith("answer = None") and f'check("{nb}", {e}, answer)' in src
        assert EXERCISES[(nb, e)].question in "".join(tail[0]["source"])
