"""The authors' released LDFusion weights in our :class:`fusionlib.ldfusion.model.LDFusion`
(docs/ldfusion.md#released-weights).

Their repository ships ``weight/Enc_final.pt`` and ``weight/Dec_final.pt``: plain state dicts of
their ``Encoder`` (``content_encoder1/2``, ``style_encoder1/2``: 1 = visible Y, 2 = IR) and
``Decoder`` (``model_local``, ``model_up``, ``mlp``). Our modules are named after what they do, so
:data:`RENAMES` maps their keys onto ours, strictly: each of their tensors lands on one of ours with
the same shape, and each of ours is filled. Their adaptive instance norms carry ``running_mean`` /
``running_var`` buffers that their forward pass never reads (it normalises with instance statistics
on a copy); they map by name onto :class:`~fusionlib.ldfusion.model.AdaIN`'s buffers of the same
role, which ours never read either.

- :func:`official_state_dict`: their two state dicts → ours (a one-line ``ValueError`` otherwise);
- :func:`load_official`: the two files (or loaded dicts) → an :class:`LDFusion` in eval mode.

Their test script's path, which :func:`fusionlib.ldfusion.inference.fuser` follows: RGB and grey PNGs
read as 8-bit and divided by 255, the Y of OpenCV's float YCrCb of the visible image, no input
noise, the decoder's output cropped to the input's top-left H×W, merged with the visible Cr, Cb and
converted back to RGB; their file writer truncates ``255·x`` to uint8 (we round: ≤ 1 grey level).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusionlib.checkpoints import key_mismatch, rename_key
from fusionlib.ldfusion.model import LDFusion
from fusionlib.paths import weights_file

__all__ = ["OFFICIAL_ENCODER", "OFFICIAL_DECODER", "OFFICIAL_URL", "RENAMES", "official_state_dict", "load_official"]

OFFICIAL_ENCODER = Path("ldfusion") / "Enc_final.pt"
OFFICIAL_DECODER = Path("ldfusion") / "Dec_final.pt"
OFFICIAL_URL = "https://github.com/wyhlaowang/LDFusion/tree/main/weight"
_HOW = f"download Enc_final.pt and Dec_final.pt from {OFFICIAL_URL}"

# their Sequential indices → ours: a stem Conv2d at 1 follows its ReflectionPad2d (ours wraps both as
# "0.1", one index for two); their zero-padded downsamplers are single modules; a residual block's
# "block.1/5" are its two convolutions, "block.2/6" its two norms.
_MODALITY = {"1": "vis", "2": "ir"}
RENAMES: tuple[tuple[str, str], ...] = (
    (r"^enc\.content_encoder(?P<m>[12])\.model\.(?P<i>1[34])\.block\.1\.", r"encoder.content.\g<m>.<\g<i>-1>.body.0.1."),
    (r"^enc\.content_encoder(?P<m>[12])\.model\.(?P<i>1[34])\.block\.5\.", r"encoder.content.\g<m>.<\g<i>-1>.body.3.1."),
    (r"^enc\.content_encoder(?P<m>[12])\.model\.1\.", r"encoder.content.\g<m>.0.1."),
    (r"^enc\.content_encoder(?P<m>[12])\.model\.(?P<i>4|7|10)\.", r"encoder.content.\g<m>.<\g<i>-1>."),
    (r"^enc\.style_encoder(?P<m>[12])\.model\.1\.", r"encoder.style.\g<m>.0.1."),
    (r"^enc\.style_encoder(?P<m>[12])\.model\.(?P<i>3|5|7|10)\.", r"encoder.style.\g<m>.<\g<i>-1>."),
    (r"^dec\.model_local\.(?P<i>[01])\.block\.1\.", r"decoder.res.\g<i>.body.0.1."),
    (r"^dec\.model_local\.(?P<i>[01])\.block\.2\.(?P<b>running_mean|running_var)$", r"decoder.res.\g<i>.body.1.\g<b>"),
    (r"^dec\.model_local\.(?P<i>[01])\.block\.5\.", r"decoder.res.\g<i>.body.3.1."),
    (r"^dec\.model_local\.(?P<i>[01])\.block\.6\.(?P<b>running_mean|running_var)$", r"decoder.res.\g<i>.body.4.\g<b>"),
    (r"^dec\.model_up\.10\.", "decoder.head.0.1."),
    (r"^dec\.model_up\.(?P<i>[0-9])\.", r"decoder.up.\g<i>."),
    (r"^dec\.mlp\.model\.", "decoder.mlp."),
)


def our_key(key: str) -> str | None:
    name = rename_key(key, RENAMES)
    if name is None:
        return None
    parts = name.split(".")
    if parts[0] == "encoder":  # the modality digit becomes its name
        parts[2] = _MODALITY.get(parts[2], parts[2])
    return ".".join(parts)


def official_state_dict(encoder: dict, decoder: dict, model: LDFusion | None = None) -> dict[str, torch.Tensor]:
    """Their ``Enc_final.pt`` and ``Dec_final.pt`` state dicts → our :class:`LDFusion` keys.

    A ``module.`` prefix (a DistributedDataParallel save) is dropped. Raises a one-line
    ``ValueError`` naming missing, unexpected or mis-shaped keys.

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """
    model = model if model is not None else LDFusion()
    ours, problems = {}, []
    for part, state in (("enc", encoder), ("dec", decoder)):
        if not isinstance(state, dict):
            raise ValueError(f"not an LDFusion {part}oder state dict: got {type(state).__name__}")
        for key, tensor in state.items():
            key = f"{part}.{key.removeprefix('module.')}"
            name = our_key(key) or key  # unknown: reported as unexpected
            if name in ours:
                problems.append(f"two of their tensors map to {name}")
            ours[name] = tensor
    mismatch = key_mismatch(model.state_dict(), ours)
    if mismatch or problems:
        raise ValueError("the LDFusion release weights do not fit our model: " + "; ".join([mismatch, *problems][:4]).strip("; "))
    return ours


def load_official(enc_path: str | Path | dict | None = None, dec_path: str | Path | dict | None = None,
                  map_location: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LDFusion:
    """The authors' ``Enc_final.pt`` / ``Dec_final.pt`` (files, or already loaded state dicts) in our
    :class:`LDFusion`, cast to ``dtype``, eval mode.

    Paths default to ``<weights root>/ldfusion/Enc_final.pt`` and ``…/Dec_final.pt``; files are read
    with ``weights_only=True``; the key map is strict (:func:`official_state_dict`).

    Derived in ``notebooks/41_ldfusion_training_and_tables.ipynb`` §1.
    """
    def read(x, default, what):
        if isinstance(x, dict):
            return x
        return torch.load(weights_file(x, default, what, _HOW), map_location="cpu", weights_only=True)
    encoder = read(enc_path, OFFICIAL_ENCODER, "LDFusion encoder weights (Enc_final.pt)")
    decoder = read(dec_path, OFFICIAL_DECODER, "LDFusion decoder weights (Dec_final.pt)")
    model = LDFusion().to(dtype)
    model.load_state_dict({k: v.to(dtype) for k, v in official_state_dict(encoder, decoder, model).items()})
    return model.to(map_location).eval()
