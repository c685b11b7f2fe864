"""fusionlib.io: formats, bit depths, channel counts, colour conventions, bad input."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fusionlib import io


@pytest.fixture
def rgb8():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(13, 17, 3), dtype=np.uint8)


# ------------------------------------------------------------------ reading and writing

@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_lossless_round_trip_8bit(tmp_path, suffix, channels):
    rng = np.random.default_rng(channels)
    arr = rng.integers(0, 256, size=(9, 11) if channels == 1 else (9, 11, channels), dtype=np.uint8)
    path = io.write_image(tmp_path / f"x{suffix}", arr)
    back = io.read_image(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_16bit_is_kept(tmp_path, suffix, channels):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 65536, size=(8, 10) if channels == 1 else (8, 10, channels), dtype=np.uint16)
    back = io.read_image(io.write_image(tmp_path / f"x{suffix}", arr))
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, arr)
    t = io.to_tensor(back)
    assert t.shape == (1, channels, 8, 10) and t.dtype == torch.float32
    assert t.max().item() == pytest.approx(arr.max() / 65535.0, rel=1e-6)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".bmp"])
def test_16bit_to_an_8bit_format_is_refused_not_clipped(tmp_path, suffix):
    arr = np.full((4, 5), 40000, dtype=np.uint16)
    with pytest.raises(ValueError, match=rf"{suffix} holds 8 bits .* clip this uint16 image"):
        io.write_image(tmp_path / f"x{suffix}", arr)
    assert not (tmp_path / f"x{suffix}").exists()


def test_rgb_order_matches_pil(tmp_path, rgb8):
    path = tmp_path / "c.png"
    Image.fromarray(rgb8).save(path)
    np.testing.assert_array_equal(io.read_image(path, "RGB"), rgb8)


def test_jpeg_reads_like_pil(tmp_path, rgb8):
    path = tmp_path / "c.jpg"
    Image.fromarray(rgb8).save(path, quality=95)
    ours = io.read_image(path, "RGB").astype(int)
    pil = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert np.abs(ours - pil).max() <= 2  # two libjpeg builds may differ by a level or two


def test_gray_of_replicated_ir_is_exact(tmp_path):
    """MSRS train IR is stored as R=G=B: reading as L must return the channel exactly."""
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    path = io.write_image(tmp_path / "ir.png", np.repeat(g[..., None], 3, axis=2))
    np.testing.assert_array_equal(io.read_image(path, "L"), g)


def test_gray_matches_bt601(tmp_path, rgb8):
    path = io.write_image(tmp_path / "c.png", rgb8)
    expected = np.floor(rgb8.astype(float) @ [0.299, 0.587, 0.114] + 0.5)
    np.testing.assert_array_equal(io.read_image(path, "L"), expected.astype(np.uint8))
    # PIL's fixed-point convert('L') agrees to one level
    pil = np.asarray(Image.fromarray(rgb8).convert("L")).astype(int)
    assert np.abs(io.read_image(path, "L").astype(int) - pil).max() <= 1


def test_rgba_and_gray_to_rgb(tmp_path, rgb8):
    rgba = np.concatenate([rgb8, np.full(rgb8.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(io.read_image(io.write_image(tmp_path / "a.png", rgba), "RGB"), rgb8)
    g = rgb8[..., 0]
    out = io.read_image(io.write_image(tmp_path / "g.png", g), "RGB")
    assert out.shape == g.shape + (3,) and (out == g[..., None]).all()


def test_read_pair_shapes_and_tensors(tmp_path, rgb8):
    ir_p = io.write_image(tmp_path / "ir.png", rgb8[..., 0])
    vi_p = io.write_image(tmp_path / "vi.png", rgb8)
    ir, vis = io.read_pair(ir_p, vi_p)
    assert ir.shape == (13, 17) and vis.shape == (13, 17, 3)
    ir_t, vis_t = io.read_pair(ir_p, vi_p, as_tensor=True)
    assert ir_t.shape == (1, 1, 13, 17) and vis_t.shape == (1, 3, 13, 17)
    assert 0 <= ir_t.min() and vis_t.max() <= 1


def test_tensor_array_round_trip(rgb8):
    np.testing.assert_array_equal(io.to_array(io.to_tensor(rgb8)), rgb8)
    np.testing.assert_array_equal(io.to_array(io.to_tensor(rgb8[..., 0])), rgb8[..., 0])


# ------------------------------------------------------------------ bad input: one-line messages

def _one_line(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for n in needles:
        assert str(n) in msg, (n, msg)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        io.read_image(tmp_path / "nope.png")
    _one_line(e, "nope.png")


def test_unreadable_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError) as e:
        io.read_image(bad)
    _one_line(e, "broken.png", "17 bytes")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError) as e:
        io.read_image(empty)
    _one_line(e, "empty.jpg")


def test_unsupported_format_and_mode(tmp_path, rgb8):
    gif = tmp_path / "x.gif"
    gif.write_bytes(b"GIF89a")
    with pytest.raises(ValueError) as e:
        io.read_image(gif)
    _one_line(e, "x.gif", ".gif")
    path = io.write_image(tmp_path / "x.png", rgb8)
    with pytest.raises(ValueError) as e:
        io.read_image(path, "CMYK")
    _one_line(e, "x.png", "CMYK")


def test_float_tiff_rejected(tmp_path):
    path = tmp_path / "f.tif"
    cv2.imwrite(str(path), np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError) as e:
        io.read_image(path)
    _one_line(e, "f.tif", "float32", "4×5")


def test_pair_size_mismatch_names_both(tmp_path, rgb8):
    ir_p = io.write_image(tmp_path / "ir.png", rgb8[:10, :, 0])
    vi_p = io.write_image(tmp_path / "vi.png", rgb8)
    with pytest.raises(ValueError) as e:
        io.read_pair(ir_p, vi_p)
    _one_line(e, "ir.png", "vi.png", "10×17", "13×17")


def test_tensor_conversion_errors():
    with pytest.raises(ValueError, match="float64"):
        io.to_tensor(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        io.to_array(torch.full((1, 1, 2, 2), float("nan")))
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 4\)"):
        io.to_array(torch.zeros(2, 3, 4, 4))
    # a 0-255 float image would be clamped to all white: refused, with the likely cause
    with pytest.raises(ValueError, match="values up to 200.*divide it by 255"):
        io.to_array(torch.full((1, 1, 2, 2), 200.0))
    assert io.to_array(torch.full((1, 1, 2, 2), 1.02)).max() == 255  # a network's small overshoot is clamped


# ------------------------------------------------------------------ colour conventions

def test_jpeg_convention_matches_pil(rgb8):
    """DCMIF's Y/Cb/Cr come from PIL convert('YCbCr') (8-bit fixed point): agree to one level."""
    pil = np.asarray(Image.fromarray(rgb8).convert("YCbCr")).astype(float)
    ours = io.rgb_to_ycbcr_jpeg(io.to_tensor(rgb8))[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours - pil).max() <= 1.0 + 1e-4  # PIL truncates Y; float32 rounding adds ~1e-5


def test_opencv_convention_matches_cv2(rgb8):
    """LDFusion uses cv2.cvtColor on float RGB: order Y, Cr, Cb."""
    x = rgb8.astype(np.float32) / 255
    ref = cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)
    ours = io.rgb_to_ycrcb_opencv(io.to_tensor(rgb8))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(ours, ref, atol=2e-6)
    back_ref = cv2.cvtColor(ref, cv2.COLOR_YCrCb2RGB)
    back = io.ycrcb_opencv_to_rgb(torch.from_numpy(ref).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(back, back_ref, atol=2e-6)
    assert np.abs(back - x).max() > 1e-5  # OpenCV's inverse is not exact, and neither is ours


@pytest.mark.parametrize("convention", io.YCBCR_CONVENTIONS)
def test_round_trips(convention):
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 8, 9, dtype=torch.float64)
    y, chroma = io.split_luma(rgb, convention)
    assert y.shape == (2, 1, 8, 9) and chroma.shape == (2, 2, 8, 9)
    torch.testing.assert_close(y, io.rgb_to_gray(rgb))
    back = io.merge_luma(y, chroma, convention)
    # jpeg: exact inverse; opencv: its rounded coefficients lose up to ~1e-3
    tol = 1e-12 if convention == "jpeg" else 2e-3
    assert (back - rgb).abs().max() < tol


def test_grey_has_neutral_chroma():
    g = torch.full((1, 3, 2, 2), 0.3)
    for convention in io.YCBCR_CONVENTIONS:
        _, chroma = io.split_luma(g, convention)
        torch.testing.assert_close(chroma, torch.full_like(chroma, 0.5))


def test_colour_functions_are_differentiable():
    rgb = torch.rand(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: io.rgb_to_ycbcr_jpeg(x), (rgb,))
    assert torch.autograd.gradcheck(lambda x: io.rgb_to_ycrcb_opencv(x), (rgb,))


def test_colour_bad_input():
    with pytest.raises(ValueError, match=r"\(1, 1, 4, 4\)"):
        io.rgb_to_ycbcr_jpeg(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="lab"):
        io.split_luma(torch.zeros(1, 3, 4, 4), "lab")
    with pytest.raises(ValueError, match="uint8"):
        io.rgb_to_gray(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


@pytest.mark.parametrize("convention", io.YCBCR_CONVENTIONS)
def test_write_fused_keeps_vis_chroma(tmp_path, rgb8, convention):
    vis = io.to_tensor(rgb8)
    y, chroma = io.split_luma(vis, convention)
    fused_y = (y * 0.5 + 0.25)
    out = io.write_fused(tmp_path / "f.png", fused_y, vis, convention)
    written = io.to_tensor(io.read_image(tmp_path / "f.png"))
    assert written.shape == (1, 3, 13, 17)
    assert (written - out).abs().max() <= 0.5 / 255 + 1e-6
    y2, chroma2 = io.split_luma(out, convention)
    inside = (out > 0).all(1, keepdim=True) & (out < 1).all(1, keepdim=True)  # unclipped pixels
    assert ((y2 - fused_y).abs()[inside]).max() < 3e-3
    # grey output when no VIS is given
    grey = io.write_fused(tmp_path / "g.png", fused_y)
    assert io.read_image(tmp_path / "g.png").ndim == 2 and grey.shape == (1, 1, 13, 17)


def test_write_fused_size_mismatch(tmp_path, rgb8):
    with pytest.raises(ValueError, match="sizes differ"):
        io.write_fused(tmp_path / "f.png", torch.zeros(1, 1, 5, 5), io.to_tensor(rgb8))


def test_atomic_write_gives_usual_permissions(tmp_path):
    path = io.atomic_write(tmp_path / "f.txt", "x")
    assert path.stat().st_mode & 0o777 == 0o666 & ~io._UMASK


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = io.atomic_write(tmp_path / "f.txt", "old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(OSError):
        io.atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


def test_grey_of_every_rgb_value_is_unchanged_by_the_blockwise_conversion():
    """All 2^24 RGB triples: the in-place, blockwise path gives exactly the whole-image BT.601 formula."""
    from fusionlib.io import LUMA, _to_gray
    v = np.arange(256, dtype=np.uint8)
    g, b = np.meshgrid(v, v, indexing="ij")
    for r in range(256):  # 256 planes of 65,536 triples
        rgb = np.stack([np.full_like(g, r), g, b], -1)
        whole = np.floor(rgb.astype(np.float64) @ np.asarray(LUMA) + 0.5).astype(np.uint8)
        assert np.array_equal(_to_gray(rgb), whole)
        assert np.array_equal(_to_gray(np.ascontiguousarray(rgb[..., ::-1]), bgr=True), whole)


def test_large_images_read_in_bounded_memory_and_the_limit_is_stated(tmp_path):
    """Issue 12 item 8: a 4000×4000 RGB file read as grey peaks at the decoded image plus the result
    (it used to allocate float64 copies of the whole image: about 15× the result)."""
    import struct
    import tracemalloc
    import zlib
    x = (np.add.outer(np.arange(4000), np.arange(4000)) % 256).astype(np.uint8)
    io.write_image(tmp_path / "big.png", np.stack([x, x[::-1], x.T], -1))
    for mode, result_mb in (("L", 16), ("RGB", 48)):
        tracemalloc.start()
        out = io.read_image(tmp_path / "big.png", mode)
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        assert out.nbytes / 1e6 == result_mb and peak < 48 + result_mb + 15, (mode, peak)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b""))
    with pytest.raises(ValueError, match=r"huge.png is larger than OpenCV's decoding limit of 2\^30 pixels"):
        io.read_image(tmp_path / "huge.png", "L")
