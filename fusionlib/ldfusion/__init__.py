"""LDFusion (ACM MM 2025): a fusion network trained with a loss in CLIP space (docs/ldfusion.md).
Notebooks 40–42.

| paper | code | notebook |
|---|---|---|
| Fig. 2: CLIP's view of IR and VIS | ``clip.load_clip``, ``clip.clip_preprocess`` | 40 §1 |
| directional loss (Eq. 3) | ``clip.directional_loss``, ``clip.text_directions`` | 40 §2 |
| the regulariser Φ (Eq. 7) | ``clip.direction_regulariser`` | 40 §3 |
| entropy patch filter (Eq. 17), patch sampling | ``clip.entropy``, ``clip.patch_mask``, ``clip.sample_patches`` | 40 §4 |
| the network (content/style encoders, AdaIN decoder) | ``model.LDFusion``, ``model.Encoder``, ``model.Decoder`` | 41 §1 |
| the authors' released Enc_final.pt / Dec_final.pt in our network | ``official.load_official``, ``official.official_state_dict`` | 41 §1 |
| total loss (Eq. 10, 13, 16) | ``loss.LanguageDrivenLoss`` | 41 §2 |
| patches that pass the entropy filter at a crop | ``train.patch_validity`` | 41 §2 |
| training, Tables 1, 3, 4 | ``train.training_set``, ``train.train``, ``inference.fuser`` | 41 §2–6 |
| the authors' trainer driven beside ours (shims, key map back to theirs) | ``control.authors_trainer``, ``control.authors_vgg`` | 42 §1 |
| | ``control.to_authors`` | 42 §1 |
| why W/O LDL collapsed: one candidate cause at a time | ``control.collapse_candidates`` | 42 §2 |
| the twin run and the learning curve | ``control.twin_run``, ``control.authors_run`` | 42 §3–4 |
"""

from fusionlib.ldfusion.official import load_official  # the entry point users look for: fusionlib.ldfusion.load_official

__all__ = ["load_official"]
