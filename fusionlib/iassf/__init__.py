"""IASSF: joint dehazing and infrared–visible fusion with prompts (docs/iassf.md). Notebooks 30–33.

| paper | code | notebook |
|---|---|---|
| scattering model, haze density (Eq. 3–4) | ``model.haze_density``; the dark channel is ``fusionlib.data.haze`` | 30 §1–3 |
| hazy training triplets (our recipe) | ``hazy.hazify`` | 30 §4 |
| "Restormer" encoder, transformer blocks (DehazeFormer in the code) | ``model.RLN``, ``model.Attention``, ``model.Block`` | 31 §3 |
| | ``model.BasicLayer``, ``model.Encoder`` | 31 §3 |
| PGM (Eq. 1–2), PEB, IA-FRM (Eq. 5) | ``model.DehazeNet``, ``model.PromptEmbedding`` | 31 §2 |
| MsPE-FM (M fusion blocks) | ``model.FusionNet`` | 31 §4 |
| the whole network, Table VII's ablations, Table IX's M | ``model.IASSF`` | 31 §1, 32 §3 |
| loss (Eq. 6–9) | ``loss.iassf_loss`` | 32 §1 |
| the authors' released IASSF.pth in our modules (strict key map) | ``official.load_official``, ``official.official_state_dict`` | 32 §2 |
| joint training; Tables I–VI against "dehaze, then fuse" | ``train.training_set``, ``train.train`` | 32 §1 |
| | ``inference.evaluation_sets``, ``inference.fuser`` | 32 §2 |
| the authors' trainer beside ours (control arm: their loss, loop and schedule; the twin run) | ``control.authors_training`` | 33 §1–3 |
| | ``control.to_authors``, ``control.twin_run`` | 33 §1–3 |
"""

from fusionlib.iassf.official import load_official  # the entry point users look for: fusionlib.iassf.load_official

__all__ = ["load_official"]
