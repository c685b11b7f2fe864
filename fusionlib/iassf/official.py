"""The authors' released IASSF weights in our :class:`fusionlib.iassf.model.IASSF` (docs/iassf.md#released-weights).

The authors publish ``IASSF.pth`` in three parts (``IASSF_part_aa``, ``_ab``, ``_ac``) to join with
``cat``; it holds two state dicts, ``dehaze_network_state_dict`` (their ``IASSF``, our
:class:`~fusionlib.iassf.model.DehazeNet`) and ``fusion_network_state_dict`` (their
``RestormerUNet``, our :class:`~fusionlib.iassf.model.FusionNet`). Our modules are named after what
they do, so their keys are renamed by :data:`RENAMES` (ordered regular expressions), strictly: every
one of their tensors must land on one of ours with the same shape, and every one of ours must be
filled. Their windows' relative-position tables are persistent buffers (ours are recomputed): they
are checked against ours and dropped.

- :func:`official_state_dict`: their two state dicts → ours (raises a one-line ``ValueError``);
- :func:`load_official`: the file (or a state dict) → an :class:`IASSF` in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fusionlib.checkpoints import key_mismatch, rename_key
from fusionlib.iassf.model import IASSF, relative_positions
from fusionlib.paths import weights_file

__all__ = ["OFFICIAL_CHECKPOINT", "OFFICIAL_URL", "RENAMES", "official_state_dict", "load_official"]

OFFICIAL_CHECKPOINT = Path("iassf") / "IASSF.pth"
OFFICIAL_URL = "https://github.com/fangjiaqi0909/IASSF/tree/main/saved_models/iassf"
PARTS = ("dehaze_network_state_dict", "fusion_network_state_dict")

# (pattern, replacement) applied in order to "<part>.<their key>"; the first that matches wins.
_ENCODER = r"(?P<rest>norm1|norm2|attn)\."  # a RestormerEncoder's transformer block
RENAMES: tuple[tuple[str, str], ...] = (
    # --- the dehaze network (their IASSF) ---
    (r"^dehaze_network_state_dict\.restormer_encoder\.mlp\.", "dehaze.encoder.proj."),
    (r"^dehaze_network_state_dict\.restormer_encoder\.ffn\.mlp\.", "dehaze.encoder.block.mlp."),
    (rf"^dehaze_network_state_dict\.restormer_encoder\.{_ENCODER}", r"dehaze.encoder.block.\g<rest>."),
    (r"^dehaze_network_state_dict\.conv24_3\.", "dehaze.ir_projection."),
    (r"^dehaze_network_state_dict\.PromptGenerationAndEmbeddingBlock\.prompt_param$", "dehaze.prompt_pool"),
    (r"^dehaze_network_state_dict\.PromptGenerationAndEmbeddingBlock\.linear_layer\.", "dehaze.prompt_weights."),
    (r"^dehaze_network_state_dict\.PromptGenerationAndEmbeddingBlock\.conv3x3_gen\.", "dehaze.prompt_conv."),
    (r"^dehaze_network_state_dict\.PromptGenerationAndEmbeddingBlock\.attention\.", "dehaze.peb.attn."),
    (r"^dehaze_network_state_dict\.PromptGenerationAndEmbeddingBlock\.conv1x1_embed\.", "dehaze.peb.reduce."),
    (r"^dehaze_network_state_dict\.PromptGenerationAndEmbeddingBlock\.conv3x3_embed\.", "dehaze.peb.out."),
    (r"^dehaze_network_state_dict\.patch_embed\.proj\.", "dehaze.embed."),
    (r"^dehaze_network_state_dict\.patch_merge(?P<i>[12])\.proj\.", r"dehaze.merge\g<i>."),
    (r"^dehaze_network_state_dict\.patch_split(?P<i>[12])\.proj\.0\.", r"dehaze.split\g<i>.0."),
    (r"^dehaze_network_state_dict\.patch_unembed\.proj\.0\.", "dehaze.out."),
    (r"^dehaze_network_state_dict\.fusion3\.", "dehaze.fusion0."),
    (r"^dehaze_network_state_dict\.layer(?P<i>\d)\.blocks\.(?P<j>\d+)\.mlp\.mlp\.", r"dehaze.layer\g<i>.\g<j>.mlp."),
    (r"^dehaze_network_state_dict\.layer(?P<i>\d)\.blocks\.(?P<j>\d+)\.", r"dehaze.layer\g<i>.\g<j>."),
    (r"^dehaze_network_state_dict\.", "dehaze."),  # skip0-2, fusion1-2, w_ir, w_vi, *_scale_conv: same names
    # --- the fusion network (their RestormerUNet): encoder1-3, decoder3, decoder2 are our stages 0-4 ---
    (r"^fusion_network_state_dict\.encoder(?P<i>[123])\.", r"fusion.enc.<\g<i>-1>."),
    (r"^fusion_network_state_dict\.decoder3\.", "fusion.enc.3."),
    (r"^fusion_network_state_dict\.decoder2\.", "fusion.enc.4."),
    (r"^fusion_network_state_dict\.prompt_in_blocks_enc\.(?P<i>\d)\.", r"fusion.peb.\g<i>."),
    (r"^fusion_network_state_dict\.prompt_in_blocks_dec\.(?P<i>\d)\.", r"fusion.peb.<\g<i>+3>."),
    (r"^fusion_network_state_dict\.prompt_adjust_conv_enc\.(?P<i>\d)\.", r"fusion.adapt.\g<i>."),
    (r"^fusion_network_state_dict\.prompt_adjust_conv_dec\.(?P<i>\d)\.", r"fusion.adapt.<\g<i>+3>."),
    (r"^fusion_network_state_dict\.skip_conv2\.", "fusion.skips.0."),  # the ½-scale skip is used first
    (r"^fusion_network_state_dict\.skip_conv1\.", "fusion.skips.1."),
    (r"^fusion_network_state_dict\.final_conv\.", "fusion.out."),
    (r"^fusion_network_state_dict\.prompt_gen_block\.prompt_param$", "fusion.prompt_pool"),
    (r"^fusion_network_state_dict\.prompt_gen_block\.linear_layer\.", "fusion.prompt_weights."),
    (r"^fusion_network_state_dict\.prompt_gen_block\.conv1\.", "fusion.prompt_in."),
    (r"^fusion_network_state_dict\.prompt_gen_block\.conv3x3\.", "fusion.prompt_conv.0."),
    (r"^fusion_network_state_dict\.prompt_gen_block\.adjust_channels\.", "fusion.prompt_conv.1."),
)
# inside any renamed Restormer encoder / prompt block, their sub-module names become ours
INNER_RENAMES = ((r"\.enc\.(?P<i>\d)\.mlp\.", r".enc.\g<i>.proj."), (r"\.enc\.(?P<i>\d)\.ffn\.mlp\.", r".enc.\g<i>.block.mlp."),
          (r"\.enc\.(?P<i>\d)\.(?P<rest>norm1|norm2|attn)\.", r".enc.\g<i>.block.\g<rest>."),
          (r"\.peb\.(?P<i>\d)\.attention\.", r".peb.\g<i>.attn."), (r"\.peb\.(?P<i>\d)\.conv1x1\.", r".peb.\g<i>.reduce."),
          (r"\.peb\.(?P<i>\d)\.conv3x3\.", r".peb.\g<i>.out."))


def official_state_dict(checkpoint: dict, model: IASSF | None = None) -> dict[str, torch.Tensor]:
    """Their ``{dehaze_network_state_dict, fusion_network_state_dict}`` → our :class:`IASSF` keys.

    A ``module.`` prefix (a DataParallel save) is dropped; the prompt pools lose their leading
    singleton axis; the relative-position buffers are checked equal to ours and dropped. Raises a
    one-line ``ValueError`` naming missing, unexpected or mis-shaped keys.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §2.
    """
    model = model if model is not None else IASSF()
    if not isinstance(checkpoint, dict) or set(PARTS) - set(checkpoint):
        got = sorted(checkpoint)[:5] if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"not an IASSF release checkpoint: expected keys {list(PARTS)}, got {got}")
    expected = model.state_dict()
    ours, problems = {}, []
    for part in PARTS:
        for key, tensor in checkpoint[part].items():
            key = key.removeprefix("module.")
            if key.endswith("attn.relative_positions"):  # a deterministic table: must equal ours
                if not torch.allclose(tensor.float(), relative_positions(int(round(tensor.shape[0] ** 0.5)))):
                    problems.append(f"{part}.{key} differs from the window's relative positions")
                continue
            name = rename_key(f"{part}.{key}", RENAMES, INNER_RENAMES) or f"{part}.{key}"  # unknown: reported as unexpected
            if name.endswith("prompt_pool") and tensor.ndim == 5:
                tensor = tensor.squeeze(0)
            if name in ours:
                problems.append(f"two of their tensors map to {name}")
            ours[name] = tensor
    mismatch = key_mismatch(expected, ours)
    if mismatch or problems:
        raise ValueError("the IASSF release checkpoint does not fit our model: " + "; ".join([mismatch, *problems][:4]).strip("; "))
    return ours


def load_official(path: str | Path | dict | None = None, map_location: str | torch.device = "cpu") -> IASSF:
    """The authors' released ``IASSF.pth`` (or its loaded dict) in our :class:`IASSF`, eval mode.

    ``path`` defaults to ``<weights root>/iassf/IASSF.pth``. Loaded with ``weights_only=True``;
    the key map is strict (:func:`official_state_dict`). README "IASSF's released weights" says
    how to download and join the three parts.

    Derived in ``notebooks/32_iassf_training_and_tables.ipynb`` §2.
    """
    if isinstance(path, dict):
        checkpoint = path
    else:
        path = weights_file(path, OFFICIAL_CHECKPOINT, "IASSF release checkpoint",
                            f"download IASSF_part_aa, _ab and _ac from {OFFICIAL_URL} and join them with "
                            "`cat IASSF_part_a? > IASSF.pth`")
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model = IASSF()
    model.load_state_dict({k: v.float() for k, v in official_state_dict(checkpoint, model).items()})
    return model.to(map_location).eval()
