"""Image files <-> arrays <-> tensors, and the two YCbCr conventions the papers use.

Derived in ``notebooks/00_data_and_conventions.ipynb`` (sections "Reading the datasets" and
"Why fusion runs on Y").

File boundary: :func:`read_image` returns the samples as stored (``uint8`` or ``uint16`` numpy,
``H×W`` or ``H×W×3``); :func:`to_tensor` turns them into ``(1, C, H, W)`` float tensors in [0, 1];
:func:`to_array` goes back. Decoding uses OpenCV because Pillow cannot decode 16-bit RGB PNG/TIFF.

Colour conventions (all on float RGB in [0, 1], tensors ``(*, 3, H, W)``):

- ``"jpeg"``: JPEG/JFIF full-range BT.601 YCbCr, channel order Y, Cb, Cr, the convention of
  PIL's ``Image.convert("YCbCr")`` (DCMIF). Cb = 0.5 + (B − Y)/1.772, Cr = 0.5 + (R − Y)/1.402.
- ``"opencv"``: OpenCV's float ``COLOR_RGB2YCrCb``, channel order **Y, Cr, Cb**, with the rounded
  coefficients Cr = 0.5 + 0.713 (R − Y), Cb = 0.5 + 0.564 (B − Y) (LDFusion). Computed with kornia.

Both share Y = 0.299 R + 0.587 G + 0.114 B; they differ only in the chroma scale (≤ 0.06 %).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Literal

import cv2
import kornia
import numpy as np
import torch

__all__ = [
    "SUPPORTED_SUFFIXES", "MODES", "YCBCR_CONVENTIONS",
    "read_image", "read_pair", "to_tensor", "to_array", "write_image", "write_fused",
    "rgb_to_ycbcr_jpeg", "ycbcr_jpeg_to_rgb", "rgb_to_ycrcb_opencv", "ycrcb_opencv_to_rgb",
    "rgb_to_gray", "split_luma", "merge_luma", "atomic_write",
]

SUPPORTED_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
EIGHT_BIT_SUFFIXES = (".jpg", ".jpeg", ".bmp")  # formats that hold 8 bits per channel: uint16 would be clipped
# a network's output may overshoot 1 a little (clamped); beyond this it is not a [0, 1] image at all
OVERSHOOT = 1.5
MODES = ("unchanged", "L", "RGB")
YCBCR_CONVENTIONS = ("jpeg", "opencv")
Mode = Literal["unchanged", "L", "RGB"]
YCbCrConvention = Literal["jpeg", "opencv"]

# ITU-R BT.601 luma weights, shared by both conventions and by grey conversion.
LUMA = (0.299, 0.587, 0.114)


def _describe(arr: np.ndarray) -> str:
    return f"{'×'.join(map(str, arr.shape))} {arr.dtype}"


def read_image(path: str | Path, mode: Mode = "unchanged") -> np.ndarray:
    """Read a PNG/JPEG/BMP/TIFF file (8- or 16-bit, 1/2/3/4 channels) into a numpy array.

    Args:
        path: the image file.
        mode: ``"unchanged"`` keeps the stored channels (``H×W`` for one channel, ``H×W×C`` in
            RGB(A) order otherwise); ``"L"`` gives ``H×W`` grey (BT.601 luma of RGB, alpha dropped;
            an IR frame stored as R=G=B comes back exactly); ``"RGB"`` gives ``H×W×3`` (grey is
            replicated, alpha dropped).

    Returns:
        ``uint8`` or ``uint16`` array, as stored in the file.

    Memory: the peak is the decoded image plus the result (grey is converted in blocks of rows, colour
    reordered in place): an 8000×8000 RGB file read as grey peaks at 0.28 GB (was 3.75 GB) for its 64 MB result.
    The largest image accepted is OpenCV's decoding limit, 2³⁰ pixels and 2²⁰ per side (raise it with the
    environment variable ``OPENCV_IO_MAX_IMAGE_PIXELS``); a larger file is a ``ValueError``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: unsupported mode or format, undecodable file, or non-integer samples.
    """
    path = Path(path)
    if mode not in MODES:
        raise ValueError(f"unsupported mode {mode!r} for {path}: use one of {', '.join(MODES)}")
    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ValueError(f"unsupported image format {path.suffix!r} for {path}: "
                         f"supported are {', '.join(SUPPORTED_SUFFIXES)}")
    raw = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode also handles non-ASCII paths
    try:
        arr = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    except cv2.error as exc:
        if "MAX_IMAGE_PIXELS" in str(exc) or "validateInputImageSize" in str(exc):
            raise ValueError(f"{path} is larger than OpenCV's decoding limit of 2^30 pixels (or 2^20 per side); "
                             "set OPENCV_IO_MAX_IMAGE_PIXELS to raise it, or tile the image") from None
        arr = None
    if arr is None:
        raise ValueError(f"cannot decode {path} ({raw.size} bytes): not a readable "
                         f"{path.suffix.lstrip('.').upper()} image")
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"unsupported sample type in {path}: {_describe(arr)} "
                         "(only 8- and 16-bit integer images are supported)")
    if mode == "L" and arr.ndim == 3 and arr.shape[2] >= 3:  # straight from BGR(A): no RGB copy
        return _to_gray(arr, bgr=True)
    # OpenCV stores colour as BGR(A); the package speaks RGB(A).
    if arr.ndim == 3:
        if arr.shape[2] == 1:
            arr = arr[..., 0]
        elif arr.shape[2] == 3:  # in place: no second copy of a large image
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)
        elif arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA, dst=arr)
        elif arr.shape[2] != 2:
            raise ValueError(f"unsupported channel count in {path}: {_describe(arr)}")
    arr = np.ascontiguousarray(arr)
    if mode == "L":
        return _to_gray(arr)
    if mode == "RGB":
        if arr.ndim == 2:
            return np.repeat(arr[..., None], 3, axis=2)
        if arr.shape[2] == 2:  # grey + alpha
            return np.repeat(arr[..., :1], 3, axis=2)
        return np.ascontiguousarray(arr[..., :3])
    return arr


_GRAY_ROWS = 64  # rows converted at a time: float64 temporaries stay at a few MB for any width


def _to_gray(arr: np.ndarray, bgr: bool = False) -> np.ndarray:
    """``H×W[×C]`` integer array (RGB(A), or BGR(A) as OpenCV decodes) -> ``H×W`` BT.601 luma, same
    dtype, rounded half up; computed in blocks of rows, so the peak is the decoded image plus the result."""
    if arr.ndim == 2:
        return arr
    if arr.shape[2] == 2:  # grey + alpha
        return np.ascontiguousarray(arr[..., 0])
    weights = np.asarray(LUMA)
    out = np.empty(arr.shape[:2], arr.dtype)
    top = np.iinfo(arr.dtype).max
    channels = slice(2, None, -1) if bgr else slice(0, 3)  # always R, G, B: the sum's order fixes its rounding
    for r in range(0, arr.shape[0], _GRAY_ROWS):
        y = arr[r:r + _GRAY_ROWS, :, channels].astype(np.float64) @ weights
        out[r:r + _GRAY_ROWS] = np.floor(y + 0.5).clip(0, top)
    return out


def read_pair(ir_path: str | Path, vis_path: str | Path, *, as_tensor: bool = False):
    """Read an IR–VIS pair: IR as one channel, VIS as RGB, checked to have the same size.

    Returns:
        ``(ir, vis)``: numpy ``H×W`` and ``H×W×3`` as stored (``as_tensor=False``), or float
        tensors ``(1, 1, H, W)`` and ``(1, 3, H, W)`` in [0, 1] (``as_tensor=True``).

    Raises:
        ValueError: the two images differ in height or width (the message gives both shapes).
    """
    ir = read_image(ir_path, "L")
    vis = read_image(vis_path, "RGB")
    if ir.shape[:2] != vis.shape[:2]:
        raise ValueError(f"IR and VIS sizes differ: {ir_path} is {ir.shape[0]}×{ir.shape[1]} (H×W), "
                         f"{vis_path} is {vis.shape[0]}×{vis.shape[1]}")
    if as_tensor:
        return to_tensor(ir), to_tensor(vis)
    return ir, vis


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """``H×W`` or ``H×W×C`` uint8/uint16 array -> float32 tensor ``(1, C, H, W)`` in [0, 1]."""
    if not isinstance(arr, np.ndarray) or arr.dtype not in (np.uint8, np.uint16) or arr.ndim not in (2, 3):
        got = _describe(arr) if isinstance(arr, np.ndarray) else type(arr).__name__
        raise ValueError(f"to_tensor expects an H×W or H×W×C uint8/uint16 array, got {got}")
    scale = float(np.iinfo(arr.dtype).max)
    t = torch.from_numpy(arr.astype(np.float32) / scale)
    t = t[None] if t.ndim == 2 else t.permute(2, 0, 1)
    return t.unsqueeze(0).contiguous()


def to_array(img: torch.Tensor, dtype: type = np.uint8) -> np.ndarray:
    """Float tensor in [0, 1], ``(1, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` -> ``H×W[×C]`` integer array.

    Values are clamped to [0, 1] and rounded to the nearest level of ``dtype`` (uint8 or uint16); an
    image with values above :data:`OVERSHOOT` is on another scale (0–255, say) and raises instead of
    saturating to white.
    """
    if not torch.is_tensor(img) or not img.is_floating_point():
        raise ValueError(f"to_array expects a float tensor, got {getattr(img, 'dtype', type(img).__name__)}")
    if img.ndim == 4:
        if img.shape[0] != 1:
            raise ValueError(f"to_array converts one image; got a batch of shape {tuple(img.shape)}")
        img = img[0]
    if img.ndim == 3:
        img = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0)
    elif img.ndim != 2:
        raise ValueError(f"to_array expects (1, C, H, W), (C, H, W) or (H, W); got {tuple(img.shape)}")
    if torch.isnan(img).any():
        raise ValueError(f"to_array: image of shape {tuple(img.shape)} contains NaN")
    top = float(img.max()) if img.numel() else 0.0
    if top > OVERSHOOT:  # clamping would write it all white: it is on another scale
        raise ValueError(f"to_array: image of shape {tuple(img.shape)} has values up to {top:.4g}, not in [0, 1] "
                         f"(a 0–255 image? divide it by 255 first)")
    scale = np.iinfo(dtype).max
    return (img.detach().cpu().double().clamp(0, 1) * scale).round().numpy().astype(dtype)


def write_image(path: str | Path, img: torch.Tensor | np.ndarray) -> Path:
    """Write a float tensor in [0, 1] (see :func:`to_array`) or a uint8/uint16 array (RGB order).

    The format follows the suffix; parent folders are created. A uint16 array needs a 16-bit format
    (PNG, TIFF): JPEG and BMP raise rather than clip it to 255. Returns the path.
    """
    path = Path(path)
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ValueError(f"unsupported image format {path.suffix!r} for {path}: "
                         f"supported are {', '.join(SUPPORTED_SUFFIXES)}")
    arr = to_array(img) if torch.is_tensor(img) else np.asarray(img)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_image: {path} would get {_describe(arr)}; pass a float tensor or uint8/uint16")
    if arr.dtype == np.uint16 and path.suffix.lower() in EIGHT_BIT_SUFFIXES:
        raise ValueError(f"write_image: {path.suffix} holds 8 bits per channel and would clip this uint16 image "
                         f"to 255 ({path}); write .png or .tif, or convert to uint8 yourself")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[..., ::-1]  # RGB -> OpenCV's BGR
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]
    ok, buf = cv2.imencode(path.suffix.lower(), np.ascontiguousarray(arr))
    if not ok:
        raise ValueError(f"cannot encode {_describe(arr)} as {path.suffix} for {path}")
    return atomic_write(path, buf.tobytes())  # a reader never sees half an image


# ---------------------------------------------------------------------------------------------
# Colour. Every function takes and returns float tensors (*, 3, H, W) in [0, 1].
# ---------------------------------------------------------------------------------------------

def _check_rgb(x: torch.Tensor, name: str) -> None:
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor (*, 3, H, W) in [0, 1], got "
                         f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W), got {tuple(x.shape)}")


def rgb_to_gray(rgb: torch.Tensor) -> torch.Tensor:
    """RGB ``(*, 3, H, W)`` -> BT.601 luma ``(*, 1, H, W)``; the Y of both YCbCr conventions."""
    _check_rgb(rgb, "rgb")
    w = rgb.new_tensor(LUMA).view(3, 1, 1)
    return (rgb * w).sum(dim=-3, keepdim=True)


# JPEG/JFIF full range (ITU-T T.871): Cb = (B - Y)/1.772 + 1/2, Cr = (R - Y)/1.402 + 1/2.
_JPEG_FWD = torch.tensor([[0.299, 0.587, 0.114],
                          [-0.168735892, -0.331264108, 0.5],
                          [0.5, -0.418687589, -0.081312411]], dtype=torch.float64)
_JPEG_OFFSET = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64)


def _apply_3x3(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", m.to(x), x)


def rgb_to_ycbcr_jpeg(rgb: torch.Tensor) -> torch.Tensor:
    """RGB -> JPEG full-range YCbCr, order (Y, Cb, Cr); matches PIL ``convert("YCbCr")`` (DCMIF).

    PIL computes in 8-bit fixed point (truncating Y), so it agrees with this float version to ±1/255.
    """
    _check_rgb(rgb, "rgb")
    return _apply_3x3(rgb, _JPEG_FWD) + _JPEG_OFFSET.to(rgb).view(3, 1, 1)


def ycbcr_jpeg_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr_jpeg` (R = Y + 1.402 (Cr − ½), …); not clamped."""
    _check_rgb(ycbcr, "ycbcr")
    inv = torch.linalg.inv(_JPEG_FWD)
    return _apply_3x3(ycbcr - _JPEG_OFFSET.to(ycbcr).view(3, 1, 1), inv)


def rgb_to_ycrcb_opencv(rgb: torch.Tensor) -> torch.Tensor:
    """RGB -> OpenCV float ``COLOR_RGB2YCrCb``, order **(Y, Cr, Cb)** (LDFusion), via kornia."""
    _check_rgb(rgb, "rgb")
    ycbcr = kornia.color.rgb_to_ycbcr(rgb)  # kornia uses OpenCV's rounded 0.564 / 0.713
    return ycbcr[..., [0, 2, 1], :, :]


# OpenCV's YCrCb -> RGB uses its own rounded coefficients, not the exact inverse of 0.713/0.564
# (kornia's ycbcr_to_rgb is the exact inverse and differs from OpenCV by up to 2.5e-4).
_OPENCV_INV = torch.tensor([[1.0, 1.403, 0.0],      # R = Y + 1.403 (Cr - 1/2)
                            [1.0, -0.714, -0.344],  # G = Y - 0.714 (Cr - 1/2) - 0.344 (Cb - 1/2)
                            [1.0, 0.0, 1.773]],     # B = Y + 1.773 (Cb - 1/2)
                           dtype=torch.float64)


def ycrcb_opencv_to_rgb(ycrcb: torch.Tensor) -> torch.Tensor:
    """OpenCV float ``COLOR_YCrCb2RGB`` (coefficients 1.403 / 0.714 / 0.344 / 1.773); not clamped.

    Not the exact inverse of :func:`rgb_to_ycrcb_opencv`: a round trip moves values by up to ~1e-3,
    as in OpenCV itself (LDFusion's colour path).
    """
    _check_rgb(ycrcb, "ycrcb")
    offset = ycrcb.new_tensor([0.0, 0.5, 0.5]).view(3, 1, 1)
    return _apply_3x3(ycrcb - offset, _OPENCV_INV)


_FORWARD = {"jpeg": rgb_to_ycbcr_jpeg, "opencv": rgb_to_ycrcb_opencv}
_INVERSE = {"jpeg": ycbcr_jpeg_to_rgb, "opencv": ycrcb_opencv_to_rgb}


def _check_convention(convention: str) -> None:
    if convention not in YCBCR_CONVENTIONS:
        raise ValueError(f"unknown colour convention {convention!r}: use one of {', '.join(YCBCR_CONVENTIONS)}")


def split_luma(rgb: torch.Tensor, convention: YCbCrConvention = "jpeg") -> tuple[torch.Tensor, torch.Tensor]:
    """RGB ``(B, 3, H, W)`` -> ``(y (B, 1, H, W), chroma (B, 2, H, W))``.

    ``chroma`` is (Cb, Cr) for ``"jpeg"`` and (Cr, Cb) for ``"opencv"``: pass it back unchanged to
    :func:`merge_luma` with the same convention.
    """
    _check_convention(convention)
    ycc = _FORWARD[convention](rgb)
    return ycc[..., :1, :, :], ycc[..., 1:, :, :]


def merge_luma(y: torch.Tensor, chroma: torch.Tensor, convention: YCbCrConvention = "jpeg") -> torch.Tensor:
    """Fused Y ``(B, 1, H, W)`` + source chroma ``(B, 2, H, W)`` -> RGB ``(B, 3, H, W)`` clamped to [0, 1]."""
    _check_convention(convention)
    if y.ndim != chroma.ndim or y.shape[-3] != 1 or chroma.shape[-3] != 2 or y.shape[-2:] != chroma.shape[-2:]:
        raise ValueError(f"merge_luma needs y (B, 1, H, W) and chroma (B, 2, H, W) of one size, got "
                         f"{tuple(y.shape)} and {tuple(chroma.shape)}")
    return _INVERSE[convention](torch.cat([y, chroma], dim=-3)).clamp(0, 1)


def write_fused(path: str | Path, fused_y: torch.Tensor, vis_rgb: torch.Tensor | None = None,
                convention: YCbCrConvention = "jpeg") -> torch.Tensor:
    """Write a fused image: the fused Y recombined with the visible image's chroma.

    Args:
        path: output file (PNG recommended: lossless).
        fused_y: ``(1, 1, H, W)`` float in [0, 1], the fused Y channel.
        vis_rgb: ``(1, 3, H, W)`` float in [0, 1], the visible image whose chroma is kept; ``None``
            writes a grey image.
        convention: ``"jpeg"`` (DCMIF, PIL) or ``"opencv"`` (LDFusion); use the one the Y came from.

    Returns:
        The RGB (or grey) tensor that was written, clamped to [0, 1].
    """
    if not torch.is_tensor(fused_y) or fused_y.ndim != 4 or fused_y.shape[:2] != (1, 1):
        raise ValueError(f"fused_y for {path} must be (1, 1, H, W), got {tuple(getattr(fused_y, 'shape', ()))}")
    if vis_rgb is None:
        out = fused_y.clamp(0, 1)
    else:
        _check_rgb(vis_rgb, "vis_rgb")
        if vis_rgb.shape[-2:] != fused_y.shape[-2:]:
            raise ValueError(f"fused Y and VIS sizes differ for {path}: {tuple(fused_y.shape)} vs "
                             f"{tuple(vis_rgb.shape)}")
        _, chroma = split_luma(vis_rgb.to(fused_y), convention)
        out = merge_luma(fused_y, chroma, convention)
    write_image(path, out)
    return out


# ------------------------------------------------------------------ atomic writes

_UMASK = os.umask(0o022)  # read the process umask (the only way is to set it) ...
os.umask(_UMASK)          # ... and put it back


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``:
    readers see the old file or the new one, never half of one. ``data`` may be a function that writes
    into the open temporary file (``lambda f: torch.save(state, f)``): a large checkpoint then goes to
    disk once, not first into a buffer in memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            raw(f) if callable(raw) else f.write(raw)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
