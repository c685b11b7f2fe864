"""data_prep: import from a local copy into the layout, verify layout/pairing/counts/checksums.

Downloads cannot run here (no network); the import path they end in is tested on local folders
shaped like the real archives.
"""

import zipfile

import pytest

from data_prep import __main__ as prep
from data_prep.sources import SOURCES
from tests.conftest import write_split


def fake_msrs_archive(tmp_path):
    top = tmp_path / "MSRS-main"  # GitHub archives wrap everything in one folder
    write_split(top / "train", ["00001D.png", "00002D.png"])
    write_split(top / "test", ["00004N.png"], seed=1)
    return tmp_path


def test_import_folder_and_verify(tmp_path, capsys):
    src = fake_msrs_archive(tmp_path / "src")
    root = tmp_path / "data"
    assert prep.main(["download", "msrs", "--from", str(src), "--root", str(root)]) == 0
    assert sorted(p.name for p in (root / "msrs" / "train" / "ir").iterdir()) == ["00001D.png", "00002D.png"]
    assert (root / "msrs" / "train" / "vi" / "00001D.png").read_bytes() == \
        (src / "MSRS-main" / "train" / "vi" / "00001D.png").read_bytes()  # byte for byte
    assert len((root / "msrs" / "CHECKSUMS.sha256").read_text().splitlines()) == 6
    capsys.readouterr()
    assert prep.main(["verify", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "msrs/train: 2 pairs, every image decodes (subset: 2 of the 1083 pairs of the full release)" in out
    assert "checksums match" in out


def test_import_zip_with_split_names(tmp_path):
    top = tmp_path / "src" / "RoadScene-ab71420"
    test_name = SOURCES["roadscene"].split_names["test"][0]
    for folder in ("cropinfrared", "crop_LR_visible"):
        write_split(top / "x", [f"{test_name}.jpg", "FLIR_99999.jpg"], modalities=(folder,))
    archive = tmp_path / "roadscene.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in top.rglob("*.jpg"):
            zf.write(p, p.relative_to(top.parent).as_posix().replace("/x/", "/"))
    root = tmp_path / "data"
    counts = prep.import_source(SOURCES["roadscene"], archive, root)
    assert counts == {"train": 1, "test": 1}
    assert [p.name for p in (root / "roadscene" / "test" / "ir").iterdir()] == [f"{test_name}.jpg"]
    assert [p.name for p in (root / "roadscene" / "train" / "vi").iterdir()] == ["FLIR_99999.jpg"]


def test_verify_detects_changes_and_bad_pairs(tmp_path, capsys):
    root = tmp_path / "data"
    prep.main(["download", "msrs", "--from", str(fake_msrs_archive(tmp_path / "src")), "--root", str(root)])
    (root / "msrs" / "test" / "vi" / "00004N.png").write_bytes(b"tampered")
    capsys.readouterr()
    assert prep.main(["verify", "msrs", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "unreadable vi/00004N.png" in err and "1 file(s) missing or changed since CHECKSUMS.sha256 was written: test/vi/00004N.png" in err


def test_verify_flags_unlisted_files_extra_pairs_and_an_empty_checksum_file(tmp_path, capsys):
    root = tmp_path / "data"
    prep.main(["download", "msrs", "--from", str(fake_msrs_archive(tmp_path / "src")), "--root", str(root)])
    sums = root / "msrs" / "CHECKSUMS.sha256"
    # a modified image whose line was removed from the checksums: it used to pass ("5 checksums match")
    sums.write_text("\n".join(ln for ln in sums.read_text().splitlines() if not ln.endswith("test/vi/00004N.png")) + "\n")
    write_split(root / "msrs" / "test", ["00004N.png"], seed=9, modalities=("vi",))
    capsys.readouterr()
    assert prep.main(["verify", "msrs", "--root", str(root)]) == 1
    assert "1 file(s) not listed in CHECKSUMS.sha256" in capsys.readouterr().err
    # an extra pair added after the checksums were written
    write_split(root / "msrs" / "train", ["00009D.png"], seed=3)
    assert prep.main(["verify", "msrs", "--root", str(root)]) == 1
    assert "test/vi/00004N.png, train/ir/00009D.png, train/vi/00009D.png" in capsys.readouterr().err
    sums.write_text("")
    assert prep.main(["verify", "msrs", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "CHECKSUMS.sha256 is empty" in err and "no checksums recorded" not in err


def test_clear_errors(tmp_path, capsys):
    root = tmp_path / "data"
    assert prep.main(["download", "tno", "--root", str(root)]) == 1
    assert "figshare" in capsys.readouterr().err  # manual source: says how to get it
    assert prep.main(["download", "msrs", "--from", str(tmp_path / "empty.txt"), "--root", str(root)]) == 1
    assert "not a folder or a .zip" in capsys.readouterr().err
    (tmp_path / "wrong").mkdir()
    (tmp_path / "wrong" / "readme.txt").write_text("x")
    assert prep.main(["download", "m3fd", "--from", str(tmp_path / "wrong"), "--root", str(root)]) == 1
    assert "none of Ir, ir, Infrared found" in capsys.readouterr().err
    assert prep.main(["verify", "msrs", "--root", str(root)]) == 1
    assert "msrs: not found" in capsys.readouterr().err


def test_existing_dataset_needs_force(tmp_path, capsys):
    src, root = fake_msrs_archive(tmp_path / "src"), tmp_path / "data"
    assert prep.main(["download", "msrs", "--from", str(src), "--root", str(root)]) == 0
    assert prep.main(["download", "msrs", "--from", str(src), "--root", str(root)]) == 1
    assert "--force" in capsys.readouterr().err
    assert prep.main(["download", "msrs", "--from", str(src), "--root", str(root), "--force"]) == 0


def test_shared_sample_data_verifies_if_present(capsys):
    """The real sample data beside the checkout, if present, passes verify (layout and pairing)."""
    from fusionlib.paths import data_root
    root = data_root()
    if not (root / "msrs").is_dir():
        pytest.skip(f"no sample data at {root} (set FUSIONLIB_DATA=../shared/data)")
    assert prep.verify(root) == []


def test_fetch_downloads_once_and_reports_failures(tmp_path):
    """The download path, over file:// URLs (urllib treats them like http)."""
    import dataclasses
    archive = tmp_path / "MSRS.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("MSRS-main/readme.txt", "x")
    source = dataclasses.replace(SOURCES["msrs"], urls=("file:///nonexistent/a.zip", archive.as_uri()))
    got = prep.fetch(source, tmp_path / "cache")
    assert got.read_bytes() == archive.read_bytes()          # second URL used after the first failed
    assert prep.fetch(source, tmp_path / "cache") == got    # cached: not fetched again
    broken = dataclasses.replace(SOURCES["msrs"], urls=("file:///nonexistent/b.zip",))
    with pytest.raises(prep.PrepError, match="could not download msrs.*By hand"):
        prep.fetch(broken, tmp_path / "cache2")


def test_force_with_a_bad_source_keeps_the_good_copy(tmp_path, capsys):
    """Issue 12 item 1: ``--force`` with an empty or broken source used to delete the dataset first."""
    root = tmp_path / "data"
    assert prep.main(["download", "msrs", "--from", str(fake_msrs_archive(tmp_path / "src")), "--root", str(root)]) == 0
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    (tmp_path / "empty").mkdir()
    broken = fake_msrs_archive(tmp_path / "broken")
    (broken / "MSRS-main" / "test" / "vi" / "00004N.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    nothing = tmp_path / "nothing"  # the right folders, no images
    for folder in ("train/ir", "train/vi", "test/ir", "test/vi"):
        (nothing / folder).mkdir(parents=True)
    for src, why in [(tmp_path / "empty", "none of train/ir found"), (broken, "unreadable vi/00004N.png"),
                     (nothing, "no images in")]:
        capsys.readouterr()
        assert prep.main(["download", "msrs", "--from", str(src), "--root", str(root), "--force"]) == 1
        assert why in capsys.readouterr().err
        assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
        assert sorted(p.name for p in root.iterdir()) == ["msrs"]  # no staging folder left behind


def test_interrupted_swap_is_recovered(tmp_path):
    """A kill between the two renames of the swap leaves the old copy aside; the next run restores it."""
    root = tmp_path / "data"
    prep.import_source(SOURCES["msrs"], fake_msrs_archive(tmp_path / "src"), root)
    (root / "msrs").rename(root / ".msrs.old-123")
    (root / ".msrs.staging-abc").mkdir()
    prep.recover(root, "msrs")
    assert sorted(p.name for p in root.iterdir()) == ["msrs"] and prep.verify(root) == []


def test_corrupt_archives(tmp_path, capsys):
    """A cached archive that is not a complete zip is fetched again, never used; a corrupt --from zip is named."""
    import dataclasses
    archive = tmp_path / "MSRS.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("MSRS-main/readme.txt", "x" * 1000)
    source = dataclasses.replace(SOURCES["msrs"], urls=(archive.as_uri(),))
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "msrs.zip").write_bytes(archive.read_bytes()[:-30])  # a download cut short
    assert prep.fetch(source, cache).read_bytes() == archive.read_bytes()
    assert "unusable" in capsys.readouterr().err
    data = bytearray(archive.read_bytes())
    data[data.index(b"xxxx")] ^= 1  # one flipped bit in the member: the CRC check fails
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(data))
    assert prep.zip_problem(flipped) == "member MSRS-main/readme.txt fails its CRC check"
    assert prep.main(["download", "msrs", "--from", str(flipped), "--root", str(tmp_path / "data")]) == 1
    assert "flipped.zip is not a readable zip (member MSRS-main/readme.txt fails its CRC check); delete it" \
        in capsys.readouterr().err


def test_verify_decodes_and_uses_the_root_manifest(tmp_path, capsys):
    """Issue 12 item 2: with checksums only in a root MANIFEST.sha256 (the sample data's layout), a
    truncated and a bit-flipped PNG used to pass; now both are named."""
    root = tmp_path / "data"
    prep.import_source(SOURCES["msrs"], fake_msrs_archive(tmp_path / "src"), root)
    own = root / "msrs" / "CHECKSUMS.sha256"
    (root / "MANIFEST.sha256").write_text("".join(f"{line[:66]}msrs/{line[66:]}\n" for line in own.read_text().splitlines()))
    own.unlink()
    assert prep.verify(root) == []
    assert "6 checksums match MANIFEST.sha256" in capsys.readouterr().out
    truncated, flipped = root / "msrs" / "train" / "ir" / "00001D.png", root / "msrs" / "train" / "vi" / "00002D.png"
    truncated.write_bytes(truncated.read_bytes()[:-40])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x10
    flipped.write_bytes(bytes(data))
    problems = prep.verify(root)
    assert any("unreadable ir/00001D.png" in p for p in problems) and any("unreadable vi/00002D.png" in p for p in problems)
    assert any("2 file(s) missing or changed since MANIFEST.sha256 was written: train/ir/00001D.png, train/vi/00002D.png"
               in p for p in problems)
    (root / "MANIFEST.sha256").unlink()
    problems = prep.verify(root)  # no checksums at all: decoding still names both files
    assert len(problems) == 1 and "00001D.png" in problems[0] and "00002D.png" in problems[0]
    assert "no checksums recorded" in capsys.readouterr().out
