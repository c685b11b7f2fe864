"""fusionlib.control: where the authors' code is, importing it without leaving a trace, the shims list,
relative differences."""

import sys

import pytest
import torch

from fusionlib import control


def test_authors_code_is_imported_for_the_block_only(tmp_path, monkeypatch):
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "models.py").write_text("import sys\nARGV = list(sys.argv)\nimport clip\nNAME = clip.NAME\n")
    stub = type(sys)("clip")
    stub.NAME = "stand-in"
    argv = list(sys.argv)
    with control.authors_code(tmp_path / "theirs", stubs={"clip": stub}, argv=["train.py"]):
        import models
        assert models.ARGV == ["train.py"] and models.NAME == "stand-in"
    assert "models" not in sys.modules and "clip" not in sys.modules and sys.argv == argv
    assert str(tmp_path / "theirs") not in sys.path


def test_authors_code_puts_functorch_rearrange_back(tmp_path, monkeypatch):
    """A backward pass through functorch.einops.rearrange rebinds the package attribute to its submodule;
    code imported after the block must get the function again."""
    einops = pytest.importorskip("functorch.einops")
    function = einops.rearrange
    rebound = type(sys)("functorch.einops.rearrange")
    rebound.rearrange = function
    (tmp_path / "theirs").mkdir()
    with control.authors_code(tmp_path / "theirs"):
        monkeypatch.setattr(einops, "rearrange", rebound)  # what their backward pass does
    assert einops.rearrange is function


def test_reference_root_says_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSIONLIB_REFERENCE_CODE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"the authors' ldfusion code is not at .*FUSIONLIB_REFERENCE_CODE"):
        control.reference_root("ldfusion")
    (tmp_path / "ldfusion").mkdir()
    assert control.reference_root("ldfusion") == tmp_path / "ldfusion"


def test_shims_csv_and_relative_difference(tmp_path):
    path = control.write_shims(tmp_path / "s.csv", [control.Shim("clip", "stand-in", "offline, so: a, b")])
    assert path.read_text() == 'name,kind,why\nclip,stand-in,"offline, so: a, b"\n'
    assert control.relative_difference(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 4.0])) == pytest.approx(0.5)
    assert control.relative_difference({"a": torch.ones(2)}, {"a": torch.ones(2)}) == 0.0
    with pytest.raises(KeyError, match="differ in keys"):
        control.relative_difference({"a": torch.ones(1)}, {"b": torch.ones(1)})


def test_script_arguments_reads_a_scripts_own_parser(tmp_path):
    """A script whose parser lives under ``if __name__ == "__main__"``: its defaults, and a command line
    parsed as its own parser would (types, nargs), without running the script."""
    script = tmp_path / "train.py"
    script.write_text("import argparse\nraise SystemExit('never run')\nif __name__ == '__main__':\n"
                      "    parser = argparse.ArgumentParser()\n"
                      "    parser.add_argument('--lr', type=float, default=1e-4)\n"
                      "    parser.add_argument('--milestones', type=int, nargs='+', default=[10, 20])\n"
                      "    parser.add_argument('--path', type=str, default='../data')\n")
    args = control.script_arguments(script)
    assert (args.lr, args.milestones, args.path) == (1e-4, [10, 20], "../data")
    args = control.script_arguments(script, ["--lr", "0.001", "--milestones", "5"])
    assert (args.lr, args.milestones) == (1e-3, [5])
    with pytest.raises(SystemExit):  # an option their parser does not know, as running their script would
        control.script_arguments(script, ["--epochs", "3"])


def test_tensor_digest_sees_what_a_sum_misses():
    """Twin runs key their caches on it: weights with the same sum (a permutation) are other weights."""
    tensor_digest = control.tensor_digest
    w = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert tensor_digest(w) == tensor_digest(w.clone()) and len(tensor_digest(w)) == 16
    assert tensor_digest(w.flip(1)) != tensor_digest(w)                 # same sum, other weights
    assert tensor_digest(w.reshape(3, 2)) != tensor_digest(w)           # same bytes, other shape
    assert tensor_digest(w.double()) != tensor_digest(w)
    assert tensor_digest({"a": w, "b": w}) == tensor_digest({"b": w, "a": w})  # a state dict's order does not matter
    assert tensor_digest({"a": w}) != tensor_digest({"c": w})
    assert tensor_digest(w.t()) == tensor_digest(w.t().contiguous())    # a view hashes as its values
    assert tensor_digest(w.bfloat16()) != tensor_digest(w.half())
