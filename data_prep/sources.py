"""The public datasets, declared once: where they come from and how their files map to our layout.

Layout written: ``<root>/<dataset>/<split>/{ir,vi}/NAME`` (hazy sets: ``ir, vi_hazy, vi_clear``).
Archives are pinned to a commit where one is known. GitHub does not promise byte-stable zips,
so no archive checksum is declared; instead every imported file's sha256 is recorded in
``<root>/<dataset>/CHECKSUMS.sha256`` and checked by ``verify``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Source", "SOURCES"]


@dataclass(frozen=True)
class Source:
    name: str
    cite: str
    urls: tuple[str, ...]               # archive download(s), tried in order; empty = manual download
    manual: str                         # how to get it by hand
    # split -> our modality folder -> path inside the extracted archive (first that exists wins)
    splits: dict[str, dict[str, tuple[str, ...]]]
    expected: dict[str, int] = field(default_factory=dict)   # pairs per split in the full release
    # names that belong to a split when the archive has no split folders (RoadScene)
    split_names: dict[str, tuple[str, ...]] = field(default_factory=dict)


# The 50 RoadScene pairs used as test set by CDDFuse and most later papers (file stems);
# the other 171 of the 221 aligned pairs form "train".
ROADSCENE_TEST = tuple((
    "FLIR_00211 FLIR_00977 FLIR_01130 FLIR_04269 FLIR_04424 FLIR_04484 FLIR_04512 FLIR_04593 FLIR_04688 "
    "FLIR_04722 FLIR_04943 FLIR_05005 FLIR_05064 FLIR_05105 FLIR_05857 FLIR_05879 FLIR_05893 FLIR_05914 "
    "FLIR_05955 FLIR_06282 FLIR_06325 FLIR_06392 FLIR_06430 FLIR_06506 FLIR_06570 FLIR_06795 FLIR_06974 "
    "FLIR_06993 FLIR_06995 FLIR_07190 FLIR_07206 FLIR_07209 FLIR_07555 FLIR_07732 FLIR_07786 FLIR_07809 "
    "FLIR_07968 FLIR_07970 FLIR_08021 FLIR_08058 FLIR_08094 FLIR_08202 FLIR_08248 FLIR_08284 FLIR_08526 "
    "FLIR_08592 FLIR_08721 FLIR_08858 FLIR_09465 FLIR_video_02829 "
).split())

SOURCES: dict[str, Source] = {s.name: s for s in [
    Source(
        name="msrs",
        cite="Tang et al., PIAFusion, Information Fusion 2022 (MSRS, built from MFNet)",
        urls=("https://github.com/Linfeng-Tang/MSRS/archive/refs/heads/main.zip",),
        manual="clone https://github.com/Linfeng-Tang/MSRS (about 670 MB), then --from <clone>",
        splits={"train": {"ir": ("train/ir",), "vi": ("train/vi",)},
                "test": {"ir": ("test/ir",), "vi": ("test/vi",)}},
        expected={"train": 1083, "test": 361},
    ),
    Source(
        name="msrs_hazy",
        cite="IASSF (hazy MSRS test set, atmospheric scattering model); clean images are MSRS",
        urls=("https://github.com/fangjiaqi0909/IASSF/archive/12c7a3bddb7b7bb99b306434c3417653b3f855ab.zip",),
        manual="clone https://github.com/fangjiaqi0909/IASSF, then --from <clone>",
        splits={"test": {"ir": ("data/MSRS/test/IR",), "vi_hazy": ("data/MSRS/test/hazy",),
                         "vi_clear": ("data/MSRS/test/GT",)}},
        expected={"test": 361},
    ),
    Source(
        name="roadscene",
        cite="Xu et al., FusionDN (AAAI 2020) / U2Fusion (TPAMI 2020); frames from FLIR ADAS",
        urls=("https://github.com/hanna-xu/RoadScene/archive/ab71420f8fc96396eeb97eecf3694909b3feb656.zip",),
        manual="clone https://github.com/hanna-xu/RoadScene, then --from <clone>",
        splits={"train": {"ir": ("cropinfrared",), "vi": ("crop_LR_visible",)},
                "test": {"ir": ("cropinfrared",), "vi": ("crop_LR_visible",)}},
        expected={"train": 171, "test": 50},
        split_names={"test": ROADSCENE_TEST},
    ),
    Source(
        name="tno",
        cite="Toet, TNO Image Fusion Dataset (figshare, 2014; Data in Brief 2017)",
        urls=(),
        manual=("download from https://figshare.com/articles/dataset/TNO_Image_Fusion_Dataset/1008029 "
                "and arrange the chosen pairs as <dir>/ir and <dir>/vi (the 25-pair set of CDDFuse's "
                "test_img/TNO works as is), then --from <dir>"),
        splits={"test": {"ir": ("ir", "IR", "test_img/TNO/ir"), "vi": ("vi", "VI", "vis", "test_img/TNO/vi")}},
    ),
    Source(
        name="m3fd",
        cite="Liu et al., TarDAL, CVPR 2022 (M3FD)",
        urls=(),
        manual=("download M3FD_Fusion from the links in https://github.com/JinyuanLiu-CV/TarDAL "
                "(Google Drive / Baidu), then --from <folder holding Ir/ and Vis/>"),
        splits={"test": {"ir": ("Ir", "ir", "Infrared"), "vi": ("Vis", "vi", "Visible")}},
    ),
]}
